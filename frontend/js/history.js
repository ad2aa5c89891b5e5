// Re-draw a stored conversation (GET /api/conversations/{id}): messages, and for each answer its run's
// steps, figures and files, replayed through the same AssistantMessage used for live runs.

import { AssistantMessage } from "./answer.js";
import { userMessage } from "./render.js";

/** Turn one stored step (StepOut) into the events a live run would have sent for it. */
export function stepEvents(step, runId) {
  const events = [{ type: "step_started", run_id: runId, step: step.step, node: step.node, tool: step.tool, input: step.input }];
  for (const inner of (step.detail && step.detail.events) || []) {
    if (inner && inner.type && !["step_started", "step_finished", "token"].includes(inner.type)) events.push(inner);
  }
  if (step.status !== "running") {
    events.push({
      type: "step_finished",
      run_id: runId,
      step: step.step,
      node: step.node,
      tool: step.tool,
      output: step.output,
      error: step.error,
      duration_ms: step.duration_ms,
      tokens: step.tokens,
    });
  }
  return events;
}

/** Events that redraw one stored run's answer, in the order a live run emits them. */
export function runEvents(run, { answer, figures = [], files = [] }) {
  const events = [{ type: "run_started", run_id: run.id, strategy: run.strategy || "", conversation_id: run.conversation_id }];
  if (run.plan && Array.isArray(run.plan.steps)) events.push({ type: "plan", run_id: run.id, ...run.plan });
  for (const step of run.steps || run.trace || []) events.push(...stepEvents(step, run.id));
  for (const f of figures) events.push({ type: "figure", run_id: run.id, artifact_id: f.id, name: f.name, url: f.url });
  for (const f of files) events.push({ type: "file", run_id: run.id, artifact_id: f.id, name: f.name, url: f.url });
  if (answer) events.push({ type: "final_answer", run_id: run.id, text: answer });
  if (run.status === "failed" && run.error) events.push({ type: "error", run_id: run.id, message: run.error });
  if (run.status === "cancelled") events.push({ type: "error", run_id: run.id, message: "the run was stopped", kind: "cancelled" });
  return events;
}

export function replayConversation(conv, { container, onError }) {
  const runs = new Map((conv.runs || []).map((r) => [r.id, r]));
  const byRun = (list) => {
    const out = new Map();
    for (const a of list || []) {
      if (a.available === false) continue;
      if (!out.has(a.run_id)) out.set(a.run_id, []);
      out.get(a.run_id).push(a);
    }
    return out;
  };
  const figures = byRun(conv.figures);
  const files = byRun(conv.files);
  const answeredRuns = new Set((conv.messages || []).filter((m) => m.role === "assistant" && m.run_id).map((m) => m.run_id));

  const drawRun = (run, answer) => {
    const view = new AssistantMessage({ onError });
    const events = run
      ? runEvents(run, { answer, figures: figures.get(run.id), files: files.get(run.id) })
      : [{ type: "final_answer", text: answer }];
    for (const event of events) view.apply(event);
    container.append(view.root);
    view.finish({ stopped: Boolean(run && run.status === "cancelled"), replayed: true });
  };

  for (const message of conv.messages || []) {
    const run = message.run_id ? runs.get(message.run_id) : null;
    if (message.role === "user") {
      container.append(userMessage(message.content));
      // A run stopped or failed before answering has no assistant message: draw what it did.
      if (run && !answeredRuns.has(run.id) && run.status !== "running") drawRun(run, "");
    } else if (message.role === "assistant") {
      drawRun(run, message.content);
    }
  }
}

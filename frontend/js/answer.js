// One assistant answer: the steps panel (plan, steps, tool calls, code, output, errors, timings), the streamed
// Markdown answer, inline figures and download links, fed with run events live or replayed from storage.

import { artifactPath, fetchBlob } from "./api.js";
import { icon } from "./icons.js";
import { codeBlock, el, formatMs, renderMarkdown } from "./render.js";

const NODE_LABELS = {
  route: "choose strategy",
  reason: "think",
  act: "use tool",
  answer: "answer",
  direct: "answer",
  plan: "plan",
  replan: "revise plan",
  execute: "run step",
  synthesise: "write answer",
};

/** Readable step names: the tool when there is one, else what the graph node does. */
export function stepLabel(node, tool) {
  return tool || NODE_LABELS[node] || node || "step";
}

const INPUT_INLINE_CHARS = 160;

/** A step's input: short ones inline, long ones (whole prompts) folded away. */
function inputElement(input) {
  if (input.length <= INPUT_INLINE_CHARS) return el("div", { class: "step-input", text: input });
  return el(
    "details",
    { class: "step-input" },
    el("summary", { text: `${input.slice(0, INPUT_INLINE_CHARS).replace(/\s+/g, " ")}…` }),
    el("pre", { text: preview(input, 4000) }),
  );
}

function label(text) {
  return el("div", { class: "code-label", text });
}

function preview(value, limit = 2000) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}

/** Download an authenticated artifact: fetch it as a blob, then click a temporary object-URL link. */
async function download(path, name) {
  const blob = await fetchBlob(path);
  const href = URL.createObjectURL(blob);
  const link = el("a", { href, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

const ERROR_LABELS = {
  cancelled: "Stopped",
  model_unavailable: "Model unavailable",
  unavailable: "Model unavailable",
  network: "Connection lost",
  rate_limited: "Too many requests",
  timeout: "Timed out",
};

/**
 * One assistant answer. Feed it run events (live from SSE or replayed from a stored run) with `apply(event)`.
 * It owns the steps panel, the Markdown answer, figures and file links.
 */
export class AssistantMessage {
  constructor({ onError } = {}) {
    this.onError = onError || (() => {});
    this.text = "";
    this.final = false;
    this.started = performance.now();
    this.steps = new Map();
    this.stepCount = 0;
    this.stepMs = 0;
    this.renderQueued = false;

    this.summary = el("summary", {}, el("span", { class: "steps-title", text: "Steps" }), el("span", { class: "steps-status" }));
    this.stepList = el("ul", { class: "step-list" });
    this.pendingCalls = [];
    this.panel = el("details", { class: "steps", open: true }, this.summary, this.stepList);
    this.answer = el("div", { class: "md answer" }, el("span", { class: "typing", text: "Thinking…" }));
    this.artifacts = el("div", { class: "artifacts" });
    this.notices = el("div", { class: "notices" });
    this.meta = el("div", { class: "msg-meta" });
    this.root = el(
      "article",
      { class: "msg assistant", "data-state": "running" },
      this.panel, this.answer, this.artifacts, this.notices, this.meta,
    );
  }

  setStatus(text) {
    this.summary.querySelector(".steps-status").textContent = text ? ` · ${text}` : "";
  }

  /** The step item that events without a step number belong to: the last one still running, or a general one. */
  currentStep() {
    const running = [...this.steps.values()].filter((s) => !s.done);
    if (running.length) return running[running.length - 1];
    return this.step(`general-${this.stepCount}`, { node: "agent" });
  }

  /** Tool calls arrive just before the step that runs them; they are shown inside that step. */
  flushCalls(target) {
    for (const call of this.pendingCalls.splice(0)) target.body.append(call);
  }

  step(key, { node = "", tool = null } = {}) {
    if (!this.steps.has(key)) {
      this.stepCount += 1;
      const title = el("span", { class: "step-title", text: stepLabel(node, tool) });
      const timing = el("span", { class: "step-time" });
      const body = el("div", { class: "step-body" });
      const item = el("li", { class: "step running" }, el("div", { class: "step-head" }, title, timing), body);
      this.stepList.append(item);
      this.steps.set(key, { item, title, timing, body, done: false });
    }
    return this.steps.get(key);
  }

  apply(event) {
    switch (event.type) {
      case "conversation":
        this.runId = event.run_id;
        break;
      case "run_started":
        this.runId = event.run_id;
        this.meta.textContent = event.strategy ? `strategy: ${event.strategy}` : "";
        this.setStatus("started");
        break;
      case "plan": {
        const items = (event.steps || []).map((s) =>
          typeof s === "string"
            ? el("li", { text: s })
            : el("li", {}, s.goal || s.description || JSON.stringify(s), s.tool ? el("span", { class: "plan-tool", text: ` · ${s.tool}` }) : null),
        );
        const planEl = el("div", { class: "plan" }, el("strong", { text: event.revision ? `Revised plan (#${event.revision})` : "Plan" }), el("ol", {}, items));
        const existing = this.stepList.parentElement.querySelector(".plan");
        if (existing) existing.replaceWith(planEl);
        else this.stepList.before(planEl);
        break;
      }
      case "step_started": {
        const s = this.step(`step-${event.step}`, event);
        s.title.textContent = `${event.step}. ${stepLabel(event.node, event.tool)}`;
        const announced = this.pendingCalls.length > 0; // live runs send the call (with its arguments) first
        this.flushCalls(s);
        if (event.input && !(event.tool && announced)) s.body.append(inputElement(event.input));
        this.setStatus(`${stepLabel(event.node, event.tool)}…`);
        break;
      }
      case "step_finished": {
        const s = this.step(`step-${event.step}`, event);
        s.done = true;
        this.stepMs += event.duration_ms || 0;
        s.item.classList.remove("running");
        s.item.classList.add(event.error ? "failed" : "ok");
        s.timing.textContent = [formatMs(event.duration_ms), event.tokens ? `${event.tokens} tok` : ""].filter(Boolean).join(" · ");
        if (event.output) s.body.append(label("Result"), el("pre", { class: "step-output", text: preview(event.output) }));
        if (event.error) s.body.append(el("pre", { class: "step-error", text: event.error }));
        break;
      }
      case "tool_call": {
        const call = el("div", { class: "tool-call" }, el("strong", { text: `call ${event.tool}` }), el("pre", { text: preview(event.args, 800) }));
        const running = [...this.steps.values()].filter((s) => !s.done);
        if (running.length) running[running.length - 1].body.append(call);
        else this.pendingCalls.push(call);
        break;
      }
      case "code":
        this.currentStep().body.append(label(event.attempt > 1 ? `Code (attempt ${event.attempt})` : "Code"), codeBlock(event.code));
        break;
      case "output": {
        const body = this.currentStep().body;
        if (event.stdout || event.stderr || event.error) body.append(label("Output"));
        if (event.stdout) body.append(el("pre", { class: "step-output", text: preview(event.stdout) }));
        if (event.stderr) body.append(el("pre", { class: "step-stderr", text: preview(event.stderr) }));
        if (event.error) body.append(el("pre", { class: "step-error", text: event.error }));
        break;
      }
      case "token":
        if (!this.final) {
          this.text += event.text;
          this.queueRender();
        }
        break;
      case "final_answer":
        if (event.strategy) this.meta.textContent = `strategy: ${event.strategy}`;
        this.final = true;
        this.text = event.text;
        this.renderAnswer();
        break;
      case "figure":
        this.addFigure(event);
        break;
      case "file":
        this.addFile(event);
        break;
      case "error":
        this.showError(event.message, event.kind);
        break;
      default:
        break; // unknown event types from a newer server are ignored on purpose
    }
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderAnswer();
    });
  }

  renderAnswer() {
    if (this.text) renderMarkdown(this.answer, this.text);
  }

  addFigure(event) {
    const figure = el("figure", { class: "figure" }, el("figcaption", { text: event.name }));
    this.artifacts.append(figure);
    fetchBlob(artifactPath(event))
      .then((blob) => {
        const img = el("img", { alt: event.name, src: URL.createObjectURL(blob) });
        figure.prepend(img);
      })
      .catch((err) => {
        figure.append(el("span", { class: "error", text: `Could not load figure: ${err.message}` }));
        this.onError(err);
      });
  }

  addFile(event) {
    const link = el(
      "a",
      {
        class: "file-link",
        href: "#",
        title: `Download ${event.name}`,
        onclick: (e) => {
          e.preventDefault();
          download(artifactPath(event), event.name).catch((err) => this.onError(err));
        },
      },
      icon("download"),
      ` ${event.name}`,
    );
    this.artifacts.append(link);
  }

  showError(message, kind = "error") {
    const label = ERROR_LABELS[kind] || "Error";
    this.notices.append(el("div", { class: `run-error ${kind === "cancelled" ? "muted" : "error"}`, text: `${label}: ${message}` }));
  }

  /** Called once the stream ends (normally, stopped or failed). */
  finish({ stopped = false, replayed = false } = {}) {
    if (this.pendingCalls.length) this.flushCalls(this.currentStep());
    this.root.dataset.state = stopped ? "stopped" : "done";
    for (const s of this.steps.values()) s.item.classList.remove("running");
    this.answer.querySelector(".typing")?.remove();
    if (!this.text && stopped && !this.notices.childElementCount) this.showError("stopped before an answer", "cancelled");
    this.renderAnswer();
    const elapsed = formatMs(replayed ? this.stepMs : performance.now() - this.started);
    const n = this.stepList.children.length;
    this.setStatus(`${n} step${n === 1 ? "" : "s"}${elapsed ? ` · ${elapsed}` : ""}${stopped ? " · stopped" : ""}`);
    if (!n && !this.panel.querySelector(".plan")) this.panel.hidden = true;
    else this.panel.open = false;
  }
}

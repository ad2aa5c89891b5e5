// Streaming chat: POST /api/chat as Server-Sent Events (fetch, because EventSource cannot POST),
// parsed with eventsource-parser; stop = POST /api/chat/{run_id}/stop plus aborting the fetch.

import { createParser } from "eventsource-parser";

import { api, authFetch } from "./api.js";

/**
 * Start one chat run. Calls `onEvent(event)` for every run event (JSON objects with a `type`).
 * Returns {done, stop}: `done` resolves when the stream ends ({stopped}), `stop()` cancels the run.
 */
export function streamChat({ message, conversationId, strategy, files, onEvent }) {
  const controller = new AbortController();
  let runId = null;
  let stopped = false;

  const body = { message, stream: true };
  if (conversationId) body.conversation_id = conversationId;
  if (strategy) body.strategy = strategy;
  if (files && files.length) body.files = files;

  const done = (async () => {
    const response = await authFetch("/api/chat?stream=true", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const parser = createParser({
      onEvent(sse) {
        if (!sse.data) return;
        let event;
        try {
          event = JSON.parse(sse.data);
        } catch {
          return; // keep-alive or non-JSON line
        }
        if (!event.type && sse.event) event.type = sse.event;
        if (event.run_id && !runId) runId = event.run_id;
        onEvent(event);
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        parser.feed(value);
      }
    } catch (err) {
      if (err.name !== "AbortError" || !stopped) throw err;
    }
    return { stopped };
  })().catch((err) => {
    if (err.name === "AbortError" && stopped) return { stopped: true };
    throw err;
  });

  async function stop() {
    if (stopped) return;
    stopped = true;
    try {
      if (runId) await api.stopRun(runId);
    } catch {
      /* the run may already be over; aborting the stream below cancels it server-side anyway */
    } finally {
      // Give the server a moment to send its closing events before the connection is cut.
      setTimeout(() => controller.abort(), 1500);
    }
  }

  return { done, stop, get runId() { return runId; } };
}

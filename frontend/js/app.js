// Entry point: wires sign-in, the conversation list, the composer (send / stop / upload) and health status.

import { api, SessionExpired } from "./api.js";
import { auth, setupAuthForm } from "./auth.js";
import { setupConversations } from "./conversations.js";
import { AssistantMessage } from "./answer.js";
import { userMessage } from "./render.js";
import { replayConversation } from "./history.js";
import { fillIcons } from "./icons.js";
import { streamChat } from "./stream.js";
import { setupUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const HEALTH_INTERVAL_MS = 30_000;

const state = { conversationId: null, run: null };

const messages = $("messages");
const input = $("input");
const sendButton = $("send");
const stopButton = $("stop");

// --- errors ---------------------------------------------------------------------------------

function showBanner(text) {
  $("banner-text").textContent = text;
  $("banner").hidden = false;
}
$("banner-close").addEventListener("click", () => ($("banner").hidden = true));

/** One place that decides what an error means to the user. */
function handleError(err) {
  console.error(err);
  if (err instanceof SessionExpired) {
    auth.clear();
    authForm.show("Your session has expired. Please sign in again.");
    return;
  }
  const kind = err.kind || "";
  if (kind === "too_large") showBanner(`Upload too large: ${err.message}`);
  else if (kind === "unsupported") showBanner(`Unsupported file: ${err.message}`);
  else if (kind === "unavailable") showBanner(`Model unavailable: ${err.message}`);
  else if (kind === "rate_limited") showBanner(`Too many requests: ${err.message}`);
  else showBanner(err.message || String(err));
}

// --- sign-in --------------------------------------------------------------------------------

const authForm = setupAuthForm({ api, onSignedIn: () => enterApp() });

async function enterApp() {
  try {
    const me = await api.me(); // also renews an expired access token, or fails with SessionExpired
    auth.store({ access_token: auth.accessToken }, { username: me.username });
  } catch (err) {
    if (err instanceof SessionExpired) handleError(err);
    else authForm.show(err.message);
    return;
  }
  $("auth-view").hidden = true;
  $("app-view").hidden = false;
  $("banner").hidden = true;
  $("whoami").textContent = auth.username;
  await conversations.refresh();
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("c");
  if (fromHash && fromHash !== state.conversationId) await openConversation(fromHash);
  input.focus();
}

$("logout").addEventListener("click", async () => {
  await state.run?.stop();
  auth.clear();
  setConversation(null);
  clearMessages();
  conversations.clear();
  authForm.show();
});

// --- health ---------------------------------------------------------------------------------

/** One short label for the top bar: which provider answers (and which model), or why chat is unavailable. */
function healthLabel(health) {
  const chain = Array.isArray(health.providers) ? health.providers.filter((p) => p.position !== null) : [];
  const active = chain.find((p) => p.healthy !== false);
  if (health.agent && health.agent !== "ready") return { text: "chat unavailable", state: "down" };
  if (!active) return { text: chain.length ? "model unavailable" : "no model provider", state: "down" };
  const model = active.name === "llamacpp" && health.model && health.model.model ? ` · ${health.model.model}` : "";
  return { text: `${active.name}${model}`, state: active === chain[0] ? "ok" : "warn" };
}

function healthDetails(health) {
  const lines = [`server ${health.version || ""}: ${health.status}`, `agent: ${health.agent}`];
  for (const p of Array.isArray(health.providers) ? health.providers : []) {
    lines.push(`${p.name}: ${p.state}${p.calls ? `, ${p.calls} calls` : ""}${p.last_error ? `, last error: ${p.last_error}` : ""}`);
  }
  if (health.model && typeof health.model === "object") {
    lines.push(`embedded model ${health.model.model}: ${health.model.present ? "present" : "not assembled"}`);
  }
  return lines.join("\n");
}

async function refreshHealth() {
  const badge = $("health");
  try {
    const health = await api.health();
    const { text, state: level } = healthLabel(health);
    badge.textContent = text;
    badge.dataset.state = level;
    badge.title = healthDetails(health);
  } catch (err) {
    badge.textContent = "server unreachable";
    badge.dataset.state = "down";
    badge.title = err.message;
  }
}

// --- conversations --------------------------------------------------------------------------

const conversations = setupConversations({
  list: $("conversations"),
  onOpen: (id) => {
    closeSidebar();
    openConversation(id);
  },
  onDeleted: () => newChat(),
  onError: handleError,
});

function setConversation(id) {
  state.conversationId = id;
  conversations.setActive(id);
  history.replaceState(null, "", id ? `#c=${id}` : location.pathname);
}

const emptyState = $("empty-state");
function clearMessages() {
  messages.replaceChildren(emptyState);
  emptyState.hidden = false;
}

function newChat() {
  if (state.run) return;
  setConversation(null);
  clearMessages();
  input.focus();
}
$("new-chat").addEventListener("click", () => {
  closeSidebar();
  newChat();
});

async function openConversation(id) {
  if (state.run) return;
  try {
    const conv = await api.conversation(id);
    setConversation(id);
    clearMessages();
    $("empty-state").hidden = true;
    replayConversation(conv, { container: messages, onError: handleError });
    scrollToEnd();
  } catch (err) {
    if (err.status === 404) {
      setConversation(null);
      showBanner("That conversation no longer exists.");
    } else handleError(err);
  }
}

// --- sending --------------------------------------------------------------------------------

const uploads = setupUpload({
  button: $("attach"),
  input: $("file-input"),
  dropZone: $("chat"),
  overlay: $("drop-overlay"),
  list: $("attachments"),
  onError: handleError,
});

function scrollToEnd() {
  messages.scrollTop = messages.scrollHeight;
}

function setRunning(running) {
  sendButton.hidden = running;
  stopButton.hidden = !running;
  $("strategy").disabled = running;
}

async function send() {
  const text = input.value.trim();
  if (!text || state.run) return;
  if (uploads.busy) {
    showBanner("Wait for the upload to finish before sending.");
    return;
  }
  const files = uploads.take();
  input.value = "";
  autosize();
  $("empty-state").hidden = true;
  $("banner").hidden = true;
  messages.append(userMessage(text, files.map((f) => f.name)));
  const answer = new AssistantMessage({ onError: handleError });
  messages.append(answer.root);
  scrollToEnd();

  const run = streamChat({
    message: text,
    conversationId: state.conversationId,
    strategy: $("strategy").value,
    files: files.map((f) => f.id),
    onEvent: (event) => {
      const announces = event.type === "conversation" || event.type === "run_started";
      if (announces && event.conversation_id && event.conversation_id !== state.conversationId) {
        setConversation(event.conversation_id);
        conversations.refresh();
      }
      const nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
      answer.apply(event);
      if (nearBottom) scrollToEnd();
    },
  });
  state.run = run;
  setRunning(true);
  let stopped = false;
  try {
    ({ stopped } = await run.done);
  } catch (err) {
    if (!answer.runId) uploads.restore(files); // refused before it started: keep the attachments for a retry
    if (err instanceof SessionExpired) handleError(err);
    else answer.showError(err.message, err.kind === "unavailable" ? "model_unavailable" : err.kind);
  } finally {
    answer.finish({ stopped });
    state.run = null;
    setRunning(false);
    conversations.refresh();
    input.focus();
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
stopButton.addEventListener("click", () => {
  stopButton.disabled = true;
  state.run?.stop().finally(() => (stopButton.disabled = false));
});

// Enter sends, Shift+Enter inserts a newline (and IME composition is left alone).
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}
input.addEventListener("input", autosize);

// --- narrow screens: the sidebar slides over the chat ----------------------------------------

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("sidebar-backdrop").hidden = true;
}
$("sidebar-toggle").addEventListener("click", () => {
  const open = document.body.classList.toggle("sidebar-open");
  $("sidebar-backdrop").hidden = !open;
});
$("sidebar-backdrop").addEventListener("click", closeSidebar);

// --- start ----------------------------------------------------------------------------------

fillIcons();
refreshHealth();
setInterval(refreshHealth, HEALTH_INTERVAL_MS);
if (auth.accessToken || auth.refreshToken) enterApp();
else authForm.show();

// Rendering primitives: safe element building, sanitised Markdown with highlighted code, user messages.

import { marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js";

import { icon } from "./icons.js";

marked.setOptions({ gfm: true, breaks: false });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** Create an element: el("div", {class: "x", text: "y"}, child, ...). Text is always set as text, never HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** Markdown → sanitised HTML in `target`, then highlight code blocks (highlight.js escapes its input). */
export function renderMarkdown(target, text) {
  const html = DOMPurify.sanitize(marked.parse(text || ""), { USE_PROFILES: { html: true } });
  target.innerHTML = html;
  for (const block of target.querySelectorAll("pre code")) hljs.highlightElement(block);
}

/** A highlighted code block built from plain text (no Markdown involved). */
export function codeBlock(code, language = "python") {
  const codeEl = el("code", { class: `language-${language}`, text: code });
  hljs.highlightElement(codeEl);
  return el("pre", { class: "code" }, codeEl);
}

export function formatMs(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function userMessage(text, files = []) {
  return el(
    "article",
    { class: "msg user" },
    files.length ? el("div", { class: "msg-files" }, files.map((f) => el("span", { class: "chip" }, icon("file"), ` ${f}`))) : null,
    el("div", { class: "bubble", text }),
  );
}


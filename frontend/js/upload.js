// File upload: button and drag-and-drop, a progress bar per batch, and a preview of each file
// (columns/rows for tables, pages for PDFs) taken from the metadata the upload reply carries.

import { uploadFiles } from "./api.js";
import { icon } from "./icons.js";
import { el } from "./render.js";

/** The file records in an upload reply, whether it is a list, {files: [...]} or one object. */
export function filesFromReply(reply) {
  if (Array.isArray(reply)) return reply;
  if (reply && Array.isArray(reply.files)) return reply.files;
  if (reply && Array.isArray(reply.items)) return reply.items;
  return reply ? [reply] : [];
}

/** The file's description (FileOut.meta.description: rows, columns, head, pages…) merged with its record. */
function describe(file) {
  const meta = file.meta || {};
  const description = meta.description && typeof meta.description === "object" ? meta.description : meta;
  return { ...description, name: file.name || description.name, size_bytes: file.size_bytes ?? description.size_bytes, rag: meta.rag };
}

function sizeText(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** One line saying what the file is: "table · 891 rows × 12 columns", "pdf · 3 pages". */
export function summaryLine(file) {
  const d = describe(file);
  const parts = [d.format || d.kind || ""];
  const columns = d.columns || [];
  if (d.rows !== undefined && d.rows !== null) parts.push(`${d.rows_exact === false ? "~" : ""}${d.rows} rows × ${columns.length} columns`);
  else if (columns.length) parts.push(`${columns.length} columns`);
  if (d.pages) parts.push(`${d.pages} page${d.pages === 1 ? "" : "s"}`);
  if (d.size_bytes) parts.push(sizeText(d.size_bytes));
  if (d.rag && d.rag.indexed) parts.push(`indexed for search${d.rag.chunks ? ` (${d.rag.chunks} chunks)` : ""}`);
  else if (d.rag && d.rag.error) parts.push(`not searchable: ${d.rag.error}`);
  return parts.filter(Boolean).join(" · ");
}

/** Preview element: a column table (name, type) plus the head rows, or the first text of a document. */
export function previewElement(file) {
  const d = describe(file);
  const box = el("div", { class: "file-preview" });
  const columns = d.columns || [];
  if (columns.length) {
    const names = columns.map((c) => (typeof c === "string" ? c : c.name));
    const types = columns.map((c) => (typeof c === "string" ? "" : c.dtype || ""));
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, names.map((n) => el("th", { text: n })))),
          el("tbody", {}, el("tr", { class: "dtypes" }, types.map((t) => el("td", { text: t })))),
        ),
      ),
    );
  }
  const text = d.head || d.preview || "";
  if (text) box.append(el("pre", { class: "file-head", text }));
  if (d.sheets && d.sheets.length) box.append(el("div", { class: "muted", text: `Sheets: ${d.sheets.join(", ")}` }));
  if (d.note) box.append(el("div", { class: "muted", text: d.note }));
  return box;
}

/**
 * Wire the attach button, the hidden file input and drag-and-drop over `dropZone`.
 * `attachments` receives ready files (id + name) to send with the next message.
 */
export function setupUpload({ button, input, dropZone, overlay, list, onError }) {
  const ready = new Map(); // id -> file record

  const chipFor = (file) => {
    const d = describe(file);
    const details = el("details", { class: "file-details" }, el("summary", { text: "preview" }), previewElement(file));
    const remove = el("button", {
      type: "button",
      class: "icon small",
      title: "Remove from this message",
      "aria-label": `Remove ${d.name}`,
      onclick: () => {
        ready.delete(file.id);
        chip.remove();
      },
    }, icon("x"));
    const chip = el(
      "div",
      { class: "attachment ready", "data-file-id": file.id },
      el("div", { class: "attachment-head" }, el("strong", {}, icon("file"), ` ${d.name}`), el("span", { class: "muted", text: summaryLine(file) }), remove),
      details,
    );
    return chip;
  };

  function upload(fileList) {
    const files = [...fileList];
    if (!files.length) return;
    const bar = el("progress", { max: "1", value: "0" });
    const label = el("span", { class: "muted", text: "0%" });
    const pending = el(
      "div",
      { class: "attachment uploading" },
      el("div", { class: "attachment-head" }, el("strong", { text: `Uploading ${files.map((f) => f.name).join(", ")}` }), label),
      bar,
    );
    list.append(pending);
    const { promise } = uploadFiles(files, {
      onProgress: (fraction) => {
        bar.value = fraction;
        label.textContent = `${Math.round(fraction * 100)}%`;
      },
    });
    promise
      .then((reply) => {
        pending.remove();
        for (const file of filesFromReply(reply)) {
          ready.set(file.id, file);
          list.append(chipFor(file));
        }
      })
      .catch((err) => {
        pending.remove();
        if (err.name !== "AbortError") onError(err);
      });
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    upload(input.files);
    input.value = "";
  });

  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  dropZone.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    overlay.hidden = false;
  });
  dropZone.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  dropZone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  dropZone.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    upload(e.dataTransfer.files);
  });

  return {
    /** Files to send with the next message; the chips are cleared once it is sent. */
    take() {
      const files = [...ready.values()];
      ready.clear();
      list.querySelectorAll(".attachment.ready").forEach((c) => c.remove());
      return files;
    },
    /** Put files back (the message they were sent with never reached the agent). */
    restore(files) {
      for (const file of files) {
        ready.set(file.id, file);
        list.append(chipFor(file));
      }
    },
    get busy() {
      return list.querySelector(".attachment.uploading") !== null;
    },
  };
}

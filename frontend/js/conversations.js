// Sidebar: the user's conversations, newest first, with open, rename and delete.

import { api } from "./api.js";
import { icon } from "./icons.js";
import { el } from "./render.js";

/** The conversation records in a list reply, whether it is a list or {items|conversations: [...]}. */
export function conversationsFromReply(reply) {
  if (Array.isArray(reply)) return reply;
  return (reply && (reply.items || reply.conversations)) || [];
}

export function setupConversations({ list, onOpen, onDeleted, onError }) {
  let activeId = null;

  async function refresh() {
    let items;
    try {
      items = conversationsFromReply(await api.conversations());
    } catch (err) {
      onError(err);
      return;
    }
    list.replaceChildren(
      ...(items.length ? items.map(item) : [el("li", { class: "muted empty", text: "No conversations yet." })]),
    );
  }

  function item(conv) {
    const title = conv.title || "Untitled";
    const open = el("button", { class: "conv-open", title, text: title, onclick: () => onOpen(conv.id) });
    const rename = el("button", {
      class: "icon small",
      title: "Rename",
      "aria-label": `Rename ${title}`,
      onclick: async () => {
        const next = window.prompt("New name for this conversation", title);
        if (next === null || !next.trim() || next.trim() === title) return;
        try {
          await api.renameConversation(conv.id, next.trim());
          await refresh();
        } catch (err) {
          onError(err);
        }
      },
    }, icon("edit"));
    const remove = el("button", {
      class: "icon small",
      title: "Delete",
      "aria-label": `Delete ${title}`,
      onclick: async () => {
        if (!window.confirm(`Delete “${title}” and its messages?`)) return;
        try {
          await api.deleteConversation(conv.id);
          if (conv.id === activeId) onDeleted(conv.id);
          await refresh();
        } catch (err) {
          onError(err);
        }
      },
    }, icon("trash"));
    return el(
      "li",
      { class: `conv${conv.id === activeId ? " active" : ""}`, "data-id": conv.id },
      open,
      el("span", { class: "conv-actions" }, rename, remove),
    );
  }

  return {
    refresh,
    clear() {
      activeId = null;
      list.replaceChildren();
    },
    setActive(id) {
      activeId = id;
      for (const li of list.querySelectorAll("li.conv")) li.classList.toggle("active", li.dataset.id === id);
    },
  };
}

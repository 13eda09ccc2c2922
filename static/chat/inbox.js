// Messages from many rooms (the mentions inbox, search results); each opens
// its room at the message.
import { connect } from "./live.js";
import { askName } from "./me.js";
import { go } from "./nav.js";
import { authorLabel } from "./render.js";
import { $, chat, label, room } from "./state.js";

// A `mentions` or `search` reply, listed; each opens its room at the message.
export function showFound(frame, listId) {
  const items = frame.messages.map((message) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    const r = room(message.room);
    open.textContent = `${r.kind === "dm" ? label(r) : `#${message.room}`} · ${authorLabel(message.author)}: ${message.body}`;
    open.addEventListener("click", () => go(message.room, message.seq));
    li.append(open);
    return li;
  });
  $(listId).replaceChildren(...items);
  $(`${listId}-empty`).hidden = items.length > 0;
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return;
  if (!connect()) return askName();
  chat.connection.ask({ type: "search", q, limit: 20 });
});

$("inbox")?.addEventListener("toggle", (event) => {
  if (event.target.open) { connect(); chat.connection.ask({ type: "mentions", limit: 20 }); }
});

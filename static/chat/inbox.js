// Messages from many rooms (the mentions inbox, search results), and
// opening a room at one message.
import { connect } from "./main.js";
import { askName } from "./me.js";
import { authorLabel } from "./render.js";
import { openRoom } from "./room.js";
import { room } from "./sidebar.js";
import { $, chat, label, list, oldestShown } from "./state.js";

// Open a room at one message: page back until it is shown, then point at it.
export function openAt(slug, seq) {
  chat.target = { slug, seq };
  if (slug === chat.current) seek();
  else openRoom(slug);
}

// Called as pages come in: show the target message once it is there.
export function seek() {
  const target = chat.target;
  if (!target || target.slug !== chat.current) return;
  const li = list.querySelector(`li[data-seq="${target.seq}"]`);
  if (li) {
    chat.target = null;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 2000);
  } else if (oldestShown() > target.seq && !chat.loadingOlder) {
    chat.loadingOlder = true;
    chat.connection.raw({ type: "history", room: chat.current, before: oldestShown(), limit: 100 });
  }
}

// A `mentions` or `search` reply, listed; each opens its room at the message.
export function showFound(frame, listId) {
  const items = frame.messages.map((message) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    const r = room(message.room);
    open.textContent = `${r.kind === "dm" ? label(r) : `#${message.room}`} · ${authorLabel(message.author)}: ${message.body}`;
    open.addEventListener("click", () => openAt(message.room, message.seq));
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

// The sidebar: the room and DM lists with their unread and mention badges,
// and "New message", which starts a DM.
import { connect } from "./main.js";
import { openRoom } from "./room.js";
import { $, chat, label, rooms } from "./state.js";

// What the page knows of room `slug`, adding it (and its link) if it is new.
export function room(slug, { kind = "room", title = slug, members = [] } = {}) {
  if (!rooms.has(slug)) {
    rooms.set(slug, {
      slug, title, kind, members, private: kind === "dm", role: null, unread: 0, mentions: 0, online: new Map(),
    });
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#${slug}`;
    a.dataset.room = slug;
    const name = document.createElement("span");
    name.className = "title";
    name.textContent = label(rooms.get(slug));
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.hidden = true;
    const mentions = badge.cloneNode();
    mentions.className = "mention-badge";
    a.append(name, mentions, badge);
    li.append(a);
    $(kind === "dm" ? "dm-list" : "room-list").append(li);
  }
  return rooms.get(slug);
}

// The room's name in its link, once its title or members are known.
export function showLabel(r) {
  document.querySelector(`a[data-room="${CSS.escape(r.slug)}"] .title`).textContent = label(r);
}

function setBadge(r, selector, text, count) {
  const badge = document.querySelector(`a[data-room="${CSS.escape(r.slug)}"] ${selector}`);
  if (badge) {
    badge.textContent = text;
    badge.hidden = count === 0;
  }
}

export function setUnread(r, count) {
  r.unread = count;
  setBadge(r, ".badge", count, count);
}

// Unread messages that @-name the user: "@2" beside the unread count.
export function setMentions(r, count) {
  r.mentions = count;
  setBadge(r, ".mention-badge", `@${count}`, count);
}

// "New message": the first message makes the DM; its ack opens it.
$("dm-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const users = $("dm-to").value.split(/[\s,]+/).filter(Boolean);
  const body = $("dm-body").value;
  if (!users.length || !body.trim()) return;
  connect();
  chat.dmStarted = chat.connection.request({ type: "dm", users, body }).client_id;
  event.target.reset();
  $("new-dm").open = false;
});

document.querySelector(".sidebar").addEventListener("click", (event) => {
  const slug = event.target.closest("a[data-room]")?.dataset.room;
  if (slug) { event.preventDefault(); openRoom(slug); }
});

// Desktop notifications, once the user allows them.
const notifyButton = $("notify");
if (notifyButton && "Notification" in window && Notification.permission === "default") {
  notifyButton.hidden = false;
  notifyButton.addEventListener("click", async () => {
    await Notification.requestPermission();
    notifyButton.hidden = true;
  });
}

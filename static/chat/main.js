// Wires the page to the socket: one room open at a time in this plain client.
import { Connection } from "./connection.js";
import { placeMessage, messageItem } from "./render.js";
import { RoomState } from "./roomstate.js";

const $ = (id) => document.getElementById(id);
const app = $("app");
const list = $("messages");
let state = null;
let connection = null;
const typingTimers = new Map();

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = new URL(`${scheme}://${location.host}/ws/chat/`);
  const guest = $("guest-name");
  if (guest && guest.value.trim()) url.searchParams.set("name", guest.value.trim());
  return url;
}

function onFrame(frame) {
  if (frame.type === "hello") {
    app.dataset.me = frame.user.name;
  } else if (frame.type === "joined" || frame.type === "history") {
    if (!state || frame.room !== state.slug) return;
    if (frame.type === "joined") {
      $("room-title").textContent = frame.title;
      // The first join starts from the page it got; later joins sent `since`.
      if (!state.joined) state.low = frame.messages.length ? frame.messages[0].seq - 1 : frame.last_seq;
      state.joined = true;
    }
    for (const message of frame.messages) show(message);
    // A long gap comes back in pages: fetch the next one.
    if (!frame.complete && frame.messages.length) fetchAfter(frame.messages.at(-1).seq);
  } else if (frame.type === "message") {
    if (!state || frame.room !== state.slug) return;
    const hole = frame.seq > state.high + 1;
    show(frame);
    if (hole) fetchAfter(state.low);
  } else if (frame.type === "typing") {
    showTyping(frame.user.name);
  } else if (frame.type === "error") {
    $("status").textContent = `${frame.code}: ${frame.detail}`;
  }
}

function fetchAfter(seq) {
  connection.raw({ type: "history", room: state.slug, after: seq, limit: 100 });
}

function show(message) {
  if (!state.accept(message.seq)) return; // a duplicate
  placeMessage(list, message);
  list.scrollTop = list.scrollHeight;
}

function showTyping(name) {
  clearTimeout(typingTimers.get(name));
  typingTimers.set(name, setTimeout(() => { typingTimers.delete(name); renderTyping(); }, 4000));
  renderTyping();
}

function renderTyping() {
  const names = [...typingTimers.keys()];
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

function openRoom(slug) {
  if (!connection) {
    connection = new Connection(socketUrl(), { onFrame, onStatus: (text) => { $("status").textContent = text; } });
  }
  state = new RoomState(slug);
  list.replaceChildren();
  $("room-title").textContent = slug;
  $("composer").hidden = false;
  for (const room of [...connection.rooms.keys()]) {
    if (room !== slug) { connection.rooms.delete(room); connection.raw({ type: "leave", room }); }
  }
  const current = state;
  connection.join(slug, () => (current.joined ? current.low : null));
  location.hash = slug;
  $("body").focus();
}

$("room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  openRoom($("room-slug").value.trim());
});
$("room-list").addEventListener("click", (event) => {
  const room = event.target.closest("a[data-room]")?.dataset.room;
  if (room) { event.preventDefault(); openRoom(room); }
});

let lastTyping = 0;
$("body").addEventListener("input", () => {
  if (state && Date.now() - lastTyping > 3000) {
    lastTyping = Date.now();
    connection.raw({ type: "typing", room: state.slug });
  }
});
$("body").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = $("body").value;
  if (!state || !body.trim()) return;
  const frame = connection.send(state.slug, body);
  list.append(messageItem({ ...frame, author: { name: app.dataset.me || "you", guest: false } }, { pending: true }));
  list.scrollTop = list.scrollHeight;
  $("body").value = "";
});

// Signed-in users come back to the room in the URL; guests pick a name first.
if (location.hash.length > 1 && app.dataset.authenticated === "1") {
  openRoom(decodeURIComponent(location.hash.slice(1)));
}

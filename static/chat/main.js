// The app: what each frame does to the page, and the wiring. Nothing
// imports this module: it imports the others, and tells live.js (the socket)
// what to do with each frame. connection.js speaks the protocol, roomstate.js
// holds the seq rules, render.js the DOM, nav.js the address, state.js what
// the page knows; me.js, sidebar.js, room.js, actions.js, composer.js and
// inbox.js each own their part of the page.
import "./actions.js";
import { errorText } from "./api.js";
import { onExport } from "./exports.js";
import { showFound } from "./inbox.js";
import { connect, follow, setup } from "./live.js";
import { onRefused, socketUrl, welcome } from "./me.js";
import { authorLabel, noticeItem } from "./render.js";
import {
  fetchAfter, markRead, openAt, openRoom, removed, showBlock, showPage, showPresence, showRoomControls, showTitle,
  showTyping, take,
} from "./room.js";
import { dmFailed, dmStarted, showLabel, showUnreadTotal } from "./sidebar.js";
import { $, app, atBottom, chat, list, oldestShown, onStatus, room, rooms, signedIn } from "./state.js";

function onFrame(frame) {
  const r = frame.room && rooms.get(frame.room);
  const open = frame.room === chat.current;
  switch (frame.type) {
    case "hello":
      welcome(frame);
      break;
    case "joined":
      Object.assign(r, {
        title: frame.title, kind: frame.kind, members: frame.members,
        private: frame.private, guests_can_write: frame.guests_can_write,
      });
      showLabel(r);
      if (open) showTitle(r);
      if (r.fresh) r.state.low = frame.messages.length ? frame.messages[0].seq - 1 : frame.last_seq;
      r.fresh = false;
      take(r, frame.messages, frame.complete);
      if (open) {
        showRoomControls(r);
        if (!oldestShown()) chat.connection.raw({ type: "history", room: chat.current, limit: 50 });
      }
      break;
    case "history":
      showPage(r, frame);
      break;
    case "mentions":
      showFound(frame, "inbox-list");
      break;
    case "search":
      showFound(frame, "search-results");
      break;
    case "message": {
      if (!r?.state) return;
      const hole = frame.seq > r.state.high + 1;
      take(r, [frame], true, { live: true });
      if (hole) fetchAfter(r.slug, r.state.low);
      break;
    }
    case "typing":
      if (open) showTyping(authorLabel(frame.user));
      break;
    case "moderated":
      if (open) {
        list.append(noticeItem(frame));
        if (atBottom()) list.scrollTop = list.scrollHeight;
      }
      break;
    case "blocks":
      chat.blocked = new Set(frame.users);
      if (chat.current) showBlock(rooms.get(chat.current));
      break;
    case "export":
      onExport(frame);
      break;
    case "added": // a new DM, or an invitation: follow it
      room(frame.room, frame).role ??= "member";
      follow(frame.room);
      break;
    case "ack":
      if (frame.client_id === chat.dmStarted) dmStarted(frame.room);
      break;
    case "left":
      if (frame.reason !== "leave") removed(r, frame.reason);
      break;
    case "presence":
      if (frame.online) r.online = new Map(frame.online.map((a) => [a.name + a.guest, a]));
      for (const a of frame.joined ?? []) r.online.set(a.name + a.guest, a);
      for (const a of frame.left ?? []) r.online.delete(a.name + a.guest);
      if (frame.count != null) r.count = frame.count;
      if (open) showPresence(r);
      break;
    case "error":
      if (frame.ref && frame.ref === chat.dmStarted) return dmFailed(frame);
      if (!chat.connection.outbox.has(frame.ref)) {
        const li = list.querySelector(`li.pending[data-client-id="${CSS.escape(frame.ref ?? "")}"]`);
        li?.classList.replace("pending", "failed");
        if (li) li.title = `Not sent: ${errorText(frame)}`;
      }
      onStatus(false, errorText(frame));
      setTimeout(() => chat.connection.connected && onStatus(true, ""), 5000);
      break;
  }
}

setup({ onFrame, socketUrl, onRefused });
$("reconnect").addEventListener("click", () => chat.connection.reconnectNow());
window.addEventListener("hashchange", openHash);
document.addEventListener("visibilitychange", markRead);

// Signed-in users connect at once, for unread counts; guests when they pick a room.
if (signedIn) connect();
showUnreadTotal();
// Every module has run and every handler is in place (the tests wait on this).
app.dataset.ready = "1";
if (location.hash.length > 1 && (signedIn || $("guest-name"))) openHash();

// The address names a room, or a message in it (`#room/seq`: the links in emails).
function openHash() {
  const [slug, seq] = decodeURIComponent(location.hash.slice(1)).split("/");
  if (seq) openAt(slug, Number(seq));
  else openRoom(slug);
}

// The composer: sending (and slash commands), replies, attachments, and
// telling the room that the user is typing.
import { apiCall, errorText } from "./api.js";
import { parseCommand } from "./commands.js";
import { messageItem, quoteBlock } from "./render.js";
import { $, chat, list, onStatus } from "./state.js";

let lastTyping = 0;

// The message the next send answers (null: none), shown above the composer.
export function setReply(message) {
  chat.replyTo = message;
  $("replying").hidden = !message;
  if (message) {
    $("replying-quote").replaceChildren(quoteBlock(message));
    $("body").focus();
  }
}

// Enter sends (or saves an edit); Shift+Enter starts a new line.
export function enterSubmits(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    event.target.form.requestSubmit();
  }
}

$("body").addEventListener("input", () => {
  if (chat.current && Date.now() - lastTyping > 3000) {
    lastTyping = Date.now();
    chat.connection.raw({ type: "typing", room: chat.current });
  }
});
$("body").addEventListener("keydown", enterSubmits);
$("reply-cancel").addEventListener("click", () => setReply(null));

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  let body = $("body").value;
  if (!chat.current || !body.trim()) return;
  // "/ban …" and the like are commands; "//…" sends the text with one slash.
  if (body.startsWith("//")) body = body.slice(1);
  else if (body.startsWith("/")) {
    const command = parseCommand(body, chat.current);
    if (command?.error) return onStatus(false, command.error);
    if (command) {
      chat.connection.raw(command.frame);
      $("body").value = "";
      return;
    }
  }
  const replyTo = chat.replyTo;
  const frame = chat.connection.request({ type: "send", room: chat.current, body, reply_to: replyTo?.seq ?? null });
  list.append(messageItem({ ...frame, author: chat.me, quote: replyTo }, { pending: true }));
  list.scrollTop = list.scrollHeight;
  $("body").value = "";
  setReply(null);
  lastTyping = 0; // others cleared "typing" on this message: announce the next one at once
});

// Attach a file: upload it, then send a message that holds it (the text
// typed, or the file's name).
$("file")?.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !chat.current) return;
  const room = chat.current;
  const form = new FormData();
  form.append("file", file);
  onStatus(false, `Uploading ${file.name}…`);
  const { ok, reply } = await apiCall(`/rooms/${encodeURIComponent(room)}/attachments`, { method: "POST", form });
  if (!ok) return onStatus(false, errorText(reply));
  onStatus(true, "");
  const body = $("body").value.trim() ? $("body").value : file.name;
  chat.connection.request({ type: "send", room, body, attachment: reply.id, reply_to: chat.replyTo?.seq ?? null });
  $("body").value = "";
  setReply(null);
});

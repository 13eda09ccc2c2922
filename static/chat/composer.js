// The composer: sending (and slash commands), replies, attachments, and
// telling the room that the user is typing.
import { apiCall, errorText } from "./api.js";
import { parseCommand } from "./commands.js";
import { appendPending, messageItem, quoteBlock } from "./render.js";
import { $, chat, list, onStatus } from "./state.js";

let lastTyping = 0;
// The counter shows from this share of the limit on.
const COUNT_FROM = 0.8;

// Characters as the server counts them (code points, not UTF-16 units).
const length = (text) => [...text].length;

// Near the limit, how much is left; past it, that it is too long. True if
// the text may be sent.
export function showCount(input, counter) {
  const count = length(input.value);
  const most = chat.limits.max_body_chars;
  const over = count > most;
  counter.hidden = count < most * COUNT_FROM;
  counter.classList.toggle("over", over);
  counter.textContent = over
    ? `${count.toLocaleString()} / ${most.toLocaleString()}: too long by ${(count - most).toLocaleString()}`
    : `${count.toLocaleString()} / ${most.toLocaleString()}`;
  input.toggleAttribute("aria-invalid", over);
  return !over;
}

// Whether the composer's text may be sent; if not, the banner says why until
// it may (a lost connection's countdown writes over it within the second).
const TOO_LONG = "Too long to send";
function fits() {
  if (showCount($("body"), $("counter"))) {
    if ($("banner").textContent.startsWith(TOO_LONG)) onStatus(true, "");
    return true;
  }
  const [count, most] = [length($("body").value), chat.limits.max_body_chars].map((n) => n.toLocaleString());
  onStatus(false, `${TOO_LONG}: ${count} characters, and a message holds ${most}. Shorten it, or send it in parts.`);
  return false;
}

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
  fits();
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
  if (!fits()) return $("body").focus(); // kept as typed, to shorten
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
  appendPending(list, messageItem({ ...frame, author: chat.me, quote: replyTo }, { pending: true }));
  $("list-state").hidden = true;
  list.scrollTop = list.scrollHeight;
  $("body").value = "";
  fits();
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

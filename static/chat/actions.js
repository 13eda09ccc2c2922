// Acting on a message in place: replying, reacting, editing one's own, and
// deleting (after asking); on a phone, a tap shows a message's actions.
import { enterSubmits, setReply } from "./composer.js";
import { PALETTE, actionButton, setBody } from "./render.js";
import { chat, list } from "./state.js";

function react(li, emoji, on) {
  chat.connection.request({ type: "react", room: chat.current, seq: Number(li.dataset.seq), emoji, on });
}

// A few buttons under a message (the emoji palette, the delete
// confirmation), one of each kind in the list at a time; Escape calls `close`.
function buttonsUnder(li, className, label, close) {
  list.querySelector(`.${className}`)?.remove();
  const group = document.createElement("div");
  group.className = className;
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", label);
  group.addEventListener("keydown", (key) => key.key === "Escape" && close());
  li.append(group);
  return group;
}

// A row of emoji to react with, under the message; a pick or Escape closes it.
function openPalette(li) {
  const palette = buttonsUnder(li, "palette", "Pick a reaction", () => palette.remove());
  for (const emoji of PALETTE) {
    const pick = document.createElement("button");
    pick.type = "button";
    pick.dataset.pick = emoji;
    pick.textContent = emoji;
    palette.append(pick);
  }
  palette.firstElementChild.focus();
}

// Edit one's own message in place: Enter saves, an unchanged text restores it.
function edit(li, seq) {
  const editor = document.createElement("form");
  editor.className = "editor";
  const input = document.createElement("textarea");
  const original = li.bodyText;
  input.value = original;
  input.setAttribute("aria-label", "Edit message");
  const save = document.createElement("button");
  save.textContent = "Save";
  editor.append(input, save);
  li.querySelector(".body").replaceWith(editor);
  input.focus();
  input.addEventListener("keydown", enterSubmits);
  editor.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const body = document.createElement("div");
    body.className = "body";
    editor.replaceWith(body);
    if (!input.value.trim() || input.value === original) return setBody(li, { body: original });
    chat.connection.request({ type: "edit", room: chat.current, seq, body: input.value });
    setBody(li, { body: input.value, edited: true });
  });
}

// Deleting asks first, in place; Escape or "Cancel" keeps the message.
function confirmDelete(li) {
  const box = buttonsUnder(li, "confirm", "Delete this message?", () => keep(li));
  box.append("Delete this message? ", actionButton("confirm-delete", "Delete"), " ", actionButton("cancel-delete", "Cancel"));
  box.querySelector("[data-action=cancel-delete]").focus();
}

// Deleting called off: back to the button that asked.
function keep(li) {
  li.querySelector(".confirm").remove();
  li.querySelector("[data-action=delete]").focus();
}

// A tap on a message shows its actions (a phone has no hover); another tap hides them.
function select(li) {
  for (const other of list.querySelectorAll("li.selected")) if (other !== li) other.classList.remove("selected");
  li.classList.toggle("selected");
}

// Replies, reactions, and editing or deleting one's own messages, in place.
list.addEventListener("click", (event) => {
  const li = event.target.closest("li[data-seq]");
  const quote = event.target.closest("[data-quote]");
  if (quote && li) {
    const original = list.querySelector(`li[data-seq="${quote.dataset.quote}"]`);
    original?.scrollIntoView({ block: "center" });
    original?.classList.add("flash");
    setTimeout(() => original?.classList.remove("flash"), 1500);
    return;
  }
  const pick = event.target.closest("[data-pick]");
  if (pick) {
    react(li, pick.dataset.pick, true);
    pick.parentElement.remove();
    return;
  }
  const chip = event.target.closest("button.reaction");
  if (chip) return react(li, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
  const button = event.target.closest("button[data-action]");
  if (!button) return li && !event.target.closest("a, button") && select(li);
  const seq = Number(li.dataset.seq);
  const action = button.dataset.action;
  if (action === "reply") return setReply({ seq, author: li.author, body: li.bodyText.slice(0, 200), deleted: false });
  if (action === "react") return openPalette(li);
  if (action === "delete") return confirmDelete(li);
  if (action === "cancel-delete") return keep(li);
  if (action === "confirm-delete") {
    chat.connection.request({ type: "delete", room: chat.current, seq });
    setBody(li, { deleted: true });
    li.querySelector(".confirm").remove();
    return;
  }
  edit(li, seq);
});

// Who this is: the name shown in the bar, and a guest's chosen name, kept
// in localStorage, checked against the server's rule before it is used,
// and changed by reconnecting under the new one.
import { connect, follow } from "./live.js";
import { authorLabel } from "./render.js";
import { $, chat, onStatus, signedIn } from "./state.js";

const NAME_KEY = "chat.guestName";
const NAME_RULE = "use 1–32 letters, digits, '_', '.' or '-', starting with a letter or digit.";
const nameBox = $("guest-name");

// The socket's URL, with a guest's name; null while a guest has no valid one.
export function socketUrl() {
  const url = new URL(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat/`);
  if (signedIn) return url;
  const name = chosenName();
  if (!name) return null;
  url.searchParams.set("name", name);
  return url;
}

// The name in the box if the server's rule allows it; else null, having said why.
function chosenName() {
  const name = nameBox?.value.trim() ?? "";
  if (name && nameBox.checkValidity()) {
    nameWrong(null);
    return name;
  }
  nameWrong(name ? `Guest name "${name}" not allowed: ${NAME_RULE}` : "Choose a name to chat as a guest.");
  return null;
}

// Point at the name box, saying what is wrong with it (null: nothing).
function nameWrong(text) {
  if (!nameBox) return;
  $("guest-error").textContent = text ?? "";
  $("guest-error").hidden = !text;
  nameBox.toggleAttribute("aria-invalid", Boolean(text));
  if (text) {
    setComposer(false, "Choose a name first");
    if (!chat.connection) onStatus(false, text); // (a refused connection says so itself)
  }
}

// A guest opened a room with no name: ask for one (the room follows once it is chosen).
export function askName() {
  chosenName();
  nameBox?.focus();
}

// The composer, usable or not (a guest with no name, a refused connection).
function setComposer(enabled, why = "") {
  $("body").disabled = !enabled;
  $("composer").querySelector("button[type=submit]").disabled = !enabled;
  $("body").placeholder = enabled ? "Message" : why;
}

// `hello`: the server says who this socket is and what it takes.
export function welcome({ user, limits }) {
  chat.me = user;
  chat.limits = limits;
  $("me").textContent = authorLabel(user);
  $("me").hidden = false;
  setComposer(true);
}

// The server refused the connection (close 4400 or 4401): a guest fixes the name.
export function onRefused(error) {
  setComposer(false, "Not connected");
  if (!signedIn) {
    nameWrong(`${error.detail}.`);
    nameBox.focus();
  }
}

// A name chosen, or changed: keep it, and connect (again) under it. Leaving
// the box with a name not allowed says nothing yet: that would move the page
// under a click on a room, which says it.
function nameChosen({ quiet = false } = {}) {
  if (quiet && !(nameBox.value.trim() && nameBox.checkValidity())) return;
  const url = socketUrl();
  if (!url) return;
  localStorage.setItem(NAME_KEY, url.searchParams.get("name"));
  if (chat.connection) {
    if (url.href !== chat.connection.url.href) chat.connection.reopen(url);
  } else {
    connect();
    if (chat.current) follow(chat.current);
  }
}

if (nameBox) {
  nameBox.value = localStorage.getItem(NAME_KEY) ?? "";
  nameBox.addEventListener("change", () => nameChosen({ quiet: true }));
  $("guest-form").addEventListener("submit", (event) => {
    event.preventDefault();
    nameChosen();
  });
}

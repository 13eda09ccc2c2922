// A room's export, for its owner: asked for here, then followed through the
// `export` frames its task sends to each of the owner's sockets.
import { apiCall, errorText } from "./api.js";
import { $, chat } from "./state.js";

export function showExport(r) {
  $("export").hidden = !(r.kind === "room" && r.role === "owner");
}

$("export").addEventListener("click", async () => {
  const { ok, reply } = await apiCall(`/rooms/${encodeURIComponent(chat.current)}/exports`, { method: "POST" });
  if (ok) onExport(reply);
  else say(`The export was refused: ${errorText(reply)}`);
});

// An `export` frame (or the API's answer): how far it got, then its link.
export function onExport(frame) {
  const what = frame.room ? `#${frame.room}` : "your messages";
  if (frame.state === "done") {
    const link = document.createElement("a");
    link.href = frame.url;
    link.textContent = `Download the export of ${what}`;
    say(link);
  } else if (frame.state === "failed") say(`The export of ${what} failed: ask for it again.`);
  else say(`Exporting ${what}: ${frame.total ? Math.floor((100 * frame.done) / frame.total) : 0}%`);
}

function say(content) {
  $("export-note").hidden = false;
  $("export-note").replaceChildren(content);
}

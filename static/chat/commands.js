// Slash commands typed in the composer, turned into `moderate` frames:
//   /kick NAME [reason]     /ban NAME [10m|2h|1d|1w] [reason]   /unban NAME
//   /mute NAME [duration] [reason]   /unmute NAME   /mod NAME   /unmod NAME
// The server decides who may; this only spells the frame.

const ACTIONS = { kick: "kick", ban: "ban", unban: "unban", mute: "mute", unmute: "unmute", mod: "promote", unmod: "demote" };
const UNIT_MINUTES = { m: 1, h: 60, d: 1440, w: 10080 };
export const COMMAND_HELP = "/kick, /ban, /unban, /mute, /unmute, /mod or /unmod, then a name";

// null if `text` is not a command; else {frame} or {error}.
export function parseCommand(text, room) {
  const match = text.trim().match(/^\/(\w+)(?:\s+(\S+))?(?:\s+(\d+)([mhdw])\b)?\s*([\s\S]*)$/);
  if (!match) return null;
  const [, name, user, amount, unit, reason] = match;
  const action = ACTIONS[name];
  if (!action) return { error: `unknown command /${name}: try ${COMMAND_HELP}` };
  if (!user) return { error: `/${name} needs a name` };
  const frame = { type: "moderate", room, action, user };
  if (amount) {
    if (action !== "ban" && action !== "mute") return { error: `only /ban and /mute take a duration` };
    frame.minutes = Number(amount) * UNIT_MINUTES[unit];
  }
  if (reason.trim()) frame.reason = reason.trim();
  return { frame };
}

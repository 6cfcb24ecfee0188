// The profile: default channel for results, and linking Telegram through the bot's deep link.

import { ApiError, request, sleep } from "./api.js";
import * as fmt from "./format.js";
import { $, show } from "./format.js";
import { channelChoices, failed, flash, loadMe, pageSignal, showView, state } from "./shell.js";

export async function showProfile(signal) {
  showView("profile", "Profile");
  show($("tg-link-box"), false);
  $("notify-saved").textContent = "";
  try {
    renderProfile(await loadMe(signal));
  } catch (err) {
    failed(err);
  }
}

function renderProfile(me) {
  $("profile-email").textContent = me.email;
  $("profile-name").textContent = me.name || "—";
  const linked = me.telegramLinked;
  $("tg-status").textContent = linked
    ? "Linked: results can be sent to your Telegram chat."
    : "Not linked. Connect Telegram to get results as a message from our bot.";
  show($("tg-connect"), !linked);
  $("tg-connect").disabled = false;
  show($("tg-disconnect"), linked);
  if (linked) show($("tg-link-box"), false);
  channelChoices($("notify-choices"), "notify-channel", me.notifyVia, linked);
  show($("notify-telegram-note"), !linked);
}

$("tg-connect").addEventListener("click", async () => {
  const signal = pageSignal();
  $("tg-connect").disabled = true;
  try {
    const link = await request("POST", "/api/me/telegram/link", undefined, { signal });
    const url = new URL(link.url);
    if (url.protocol !== "https:")
      throw new ApiError(0, { detail: "The server sent an unusable Telegram link." });
    $("tg-link").href = url.href;
    $("tg-expiry").textContent = link.expiresAt
      ? `The link works once, until ${fmt.dateTime(link.expiresAt)} UTC.`
      : "";
    show($("tg-link-box"));
    $("tg-status").textContent = "Open Telegram and press Start; this page notices when you are linked.";
    const until = link.expiresAt ? Date.parse(link.expiresAt) : Date.now() + 600e3;
    while (!signal.aborted && Date.now() < until) {
      await sleep(3000, signal);
      if (signal.aborted) return;
      const me = await loadMe(signal);
      if (me.telegramLinked) {
        renderProfile(me);
        flash("Telegram is linked.", "success");
        return;
      }
    }
    if (!signal.aborted) renderProfile(state.me);
  } catch (err) {
    if (signal.aborted) return;
    // 404: no Telegram routes on this server; 503: no bot configured, or Telegram unreachable.
    $("tg-status").textContent =
      err.status === 404 ? "Telegram is not configured on this server." : err.message;
    show($("tg-link-box"), false);
    $("tg-connect").disabled = err.status === 404;
  }
});

$("tg-disconnect").addEventListener("click", async () => {
  $("tg-disconnect").disabled = true;
  try {
    await request("DELETE", "/api/me/telegram");
    renderProfile(await loadMe());
    flash("Telegram is disconnected.", "info");
  } catch (err) {
    if (err.status === 404) $("tg-status").textContent = "Telegram is not configured on this server.";
    else failed(err);
  } finally {
    $("tg-disconnect").disabled = false;
  }
});

$("notify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = document.querySelector("input[name=notify-channel]:checked");
  if (!chosen) return;
  try {
    state.me = await request("PATCH", "/api/me", { notifyVia: chosen.value });
    renderProfile(state.me);
    $("notify-saved").textContent = "Saved.";
  } catch (err) {
    failed(err);
  }
});

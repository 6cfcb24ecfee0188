// What a trader does with a result: download it (CSV, JSON) and share a read-only link.

import { download, request } from "./api.js";
import { $, show } from "./format.js";
import { flash } from "./shell.js";

/** Wires the download and share buttons of job `id`; `shared` pages get none of them. */
export function renderActions(id, shared) {
  show($("result-actions"), !shared);
  if (shared) return;
  const base = `/api/backtest/queue/${id}`;
  const save = (path, name) => () => download(`${base}/${path}`, name).catch((err) => flash(err.message, "error"));
  $("export-trades").onclick = save("trades.csv", `backtest-${id}-trades.csv`);
  $("export-equity").onclick = save("equity.csv", `backtest-${id}-equity.csv`);
  $("export-json").onclick = save("result.json", `backtest-${id}-result.json`);
  show($("share-box"), false);
  $("share-create").textContent = "Create share link";
  $("share-create").onclick = () => createLink(base);
  $("share-copy").onclick = async () => {
    $("share-url").select();
    try {
      await navigator.clipboard.writeText($("share-url").value);
      flash("Link copied.", "success");
    } catch {
      flash("Select the link and copy it.", "info");
    }
  };
  $("share-revoke").onclick = async () => {
    try {
      await request("DELETE", `${base}/share`);
      show($("share-box"), false);
      $("share-create").textContent = "Create share link";
      flash("The link is revoked: it no longer opens this result.", "success");
    } catch (err) {
      flash(err.message, "error");
    }
  };
}

async function createLink(base) {
  try {
    const days = $("share-days").value;
    const link = await request("POST", `${base}/share`, days ? { expiresInDays: Number(days) } : {});
    $("share-url").value = link.url;
    $("share-expiry").textContent = link.expiresAt
      ? `Works until ${link.expiresAt.slice(0, 16).replace("T", " ")} UTC.`
      : "Works until you revoke it. A new link replaces this one.";
    $("share-create").textContent = "Create a new link";
    show($("share-box"));
    $("share-url").select();
  } catch (err) {
    flash(err.message, "error");
  }
}

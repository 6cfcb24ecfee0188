// The Algotcha page: sign in, the backtest form and its run dialog, live status, results, profile.
// Every piece of user or server text goes into the page through textContent (see format.el).

// Modules: api.js (HTTP, SSE), shell.js (shared state), form.js, job.js, jobs.js, profile.js.

import { get, request, session } from "./api.js";
import { showCompare } from "./compare.js";
import { $, el, show } from "./format.js";
import { showNew } from "./form.js";
import { showJob, showShared } from "./job.js";
import { showJobs } from "./jobs.js";
import { showProfile } from "./profile.js";
import { flash, loadMe, nextPage, pollStats, showView, state } from "./shell.js";

// --- routing -------------------------------------------------------------------------------------

// A shared result (/shared/<token>) is read-only and open to anyone with the link.
const SHARED = location.pathname.match(/^\/shared\/([A-Za-z0-9_-]+)$/);

function route() {
  const signal = nextPage();
  const hash = location.hash || "#/";
  if (SHARED) {
    showShared(SHARED[1], signal);
    return;
  }
  if (!session.token) {
    if (hash !== "#/") state.returnTo = hash;
    renderAuth();
    return;
  }
  show($("nav"));
  show($("account"));
  const job = hash.match(/^#\/jobs\/(\d+)$/);
  const compare = hash.match(/^#\/compare\?ids=(\d+(?:,\d+)*)$/);
  if (job) showJob(Number(job[1]), signal);
  else if (compare) showCompare(compare[1].split(",").map(Number), signal);
  else if (hash === "#/jobs") showJobs(signal);
  else if (hash === "#/profile") showProfile(signal);
  else showNew();
}

// --- sign in / register --------------------------------------------------------------------------

function renderAuth(message = "") {
  show($("nav"), false);
  show($("account"), false);
  showView("auth", "Sign in");
  setAuthMode(state.authMode);
  flash(message, "info");
}

function setAuthMode(mode) {
  state.authMode = mode;
  const register = mode === "register";
  $("auth-heading").textContent = register ? "Create your account" : "Sign in";
  $("auth-submit").textContent = register ? "Create account" : "Sign in";
  $("auth-switch-text").textContent = register ? "Already have an account?" : "New here?";
  $("auth-toggle").textContent = register ? "Sign in" : "Create an account";
  $("auth-password").autocomplete = register ? "new-password" : "current-password";
  show($("auth-name-field"), register);
  show($("auth-password-hint"), register);
  show($("auth-error"), false);
}

$("auth-toggle").addEventListener("click", () => {
  setAuthMode(state.authMode === "register" ? "signin" : "register");
  $("auth-email").focus();
});

$("auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("auth-email").value.trim();
  const password = $("auth-password").value;
  const name = $("auth-name").value.trim();
  const error = $("auth-error");
  const register = state.authMode === "register";
  let problem = "";
  if (!email.includes("@")) problem = "Enter your email address.";
  else if (register && password.length < 8) problem = "Choose a password of at least 8 characters.";
  else if (!password) problem = "Enter your password.";
  if (problem) {
    error.textContent = problem;
    show(error);
    return;
  }
  $("auth-submit").disabled = true;
  try {
    if (register)
      await request("POST", "/api/auth/register", name ? { email, password, name } : { email, password });
    const login = await request("POST", "/api/auth/login", { email, password });
    session.save(login.accessToken, login.expiresIn);
    $("auth-password").value = "";
    show(error, false);
    flash("");
    state.me = await get("/api/me");
    $("account-email").textContent = state.me.email;
    const target = state.returnTo;
    state.returnTo = "#/";
    if (location.hash === target) route();
    else location.hash = target;
  } catch (err) {
    const messages = {
      401: "Wrong email or password.",
      409: "An account with this email already exists. Sign in instead.",
    };
    error.textContent =
      messages[err.status] ||
      (err.fieldErrors || []).map((e) => `${e.field}: ${e.message}`).join(" ") ||
      err.message;
    show(error);
  } finally {
    $("auth-submit").disabled = false;
  }
});

function signOut(message = "") {
  nextPage();
  session.clear();
  state.me = null;
  state.returnTo = "#/";
  state.authMode = "signin";
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  renderAuth(message);
}

$("sign-out").addEventListener("click", () => signOut("You are signed out."));
session.onUnauthorized(() => {
  const here = location.hash;
  signOut("Your session has expired. Please sign in again.");
  state.returnTo = here || "#/"; // back to the same place after signing in
});

// --- start ---------------------------------------------------------------------------------------

window.addEventListener("hashchange", () => {
  flash("");
  route();
});
if (SHARED) {
  // Not for search engines: the API says so in X-Robots-Tag as well.
  document.head.append(el("meta", { name: "robots", content: "noindex, nofollow" }));
  $("brand-link").removeAttribute("href");
  route();
} else {
  if (session.token) loadMe().catch(() => {});
  route();
  pollStats();
}

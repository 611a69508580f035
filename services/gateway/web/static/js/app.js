// The portal's shell: who is signed in, the header (with My Cart), and the client-side router.

import { api, get, setCsrfToken, ApiError } from "./api.js";
import { h, clear, alertBox, loading } from "./ui.js";
import { routes as authRoutes } from "./pages/auth.js";
import { routes as homeRoutes } from "./pages/home.js";
import { routes as settingsRoutes } from "./pages/settings.js";
import { routes as utilityRoutes } from "./pages/utility.js";
import { routes as generalRoutes } from "./pages/general.js";
import { routes as cartRoutes } from "./pages/cart.js";

const SITE = "Citizen Self Service";

export const app = {
  me: null,
  cart: null,
  navigate,
  refreshMe,
  refreshCart,
  setCart,
  signedIn: () => Boolean(app.me),
};

const routes = [...authRoutes, ...homeRoutes, ...settingsRoutes, ...utilityRoutes, ...generalRoutes, ...cartRoutes].map(
  (r) => ({ ...r, regex: compile(r.path) }),
);

function compile(path) {
  const names = [];
  const source = path.replace(/:([a-z_]+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  return { re: new RegExp(`^${source}/?$`), names };
}

function match(pathname) {
  for (const route of routes) {
    const m = route.regex.re.exec(pathname);
    if (m) {
      const params = {};
      route.regex.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1])));
      return { route, params };
    }
  }
  return null;
}

async function refreshMe() {
  try {
    const data = await get("/me");
    if (data && data.csrf_token) setCsrfToken(data.csrf_token);
    // GET /me answers {user: profile, csrf_token, session}.
    app.me = data && data.user ? { ...data.user, session: data.session } : data;
    clear(document.getElementById("site-alert"));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) console.warn("GET /me", err);
    app.me = null;
    // Sign-in (identity) down: say so once, while the public pages keep working.
    const banner = document.getElementById("site-alert");
    if (banner && err instanceof ApiError && (err.status === 0 || err.status >= 500)) {
      clear(banner, h("div", { class: "notice notice-error" }, h("p", {}, "Signing in is unavailable right now, so your accounts cannot be shown. Quick pay and public pages still work. Please try again in a few minutes.")));
    } else if (banner) {
      clear(banner);
    }
  }
  renderHeader();
  return app.me;
}

async function refreshCart() {
  try {
    setCart(await get("/cart"));
  } catch {
    setCart(null);
  }
  return app.cart;
}

function setCart(cart) {
  app.cart = cart;
  const count = document.getElementById("cart-count");
  if (count) count.textContent = String(cart ? cart.count || (cart.items || []).length : 0);
}

function navLink(href, text, current) {
  return h("li", {}, h("a", { href, "aria-current": current ? "page" : null }, text));
}

function renderHeader() {
  const nav = document.getElementById("site-nav");
  const account = document.getElementById("account-nav");
  if (!nav || !account) return;
  const here = location.pathname;
  const starts = (p) => here === p || here.startsWith(`${p}/`);
  clear(
    nav,
    h(
      "ul",
      {},
      navLink("/", "Home", here === "/"),
      navLink("/utility", "Utility billing", starts("/utility") || starts("/accounts") || starts("/bills")),
      navLink("/general", "General billing", starts("/general") || starts("/customers")),
      app.me ? navLink("/payments", "Payments", starts("/payments")) : navLink("/quick-pay", "Quick pay", starts("/quick-pay")),
    ),
  );
  const cartCount = app.cart ? app.cart.count || (app.cart.items || []).length : 0;
  clear(
    account,
    h(
      "ul",
      {},
      h(
        "li",
        {},
        h(
          "a",
          { href: "/cart", class: "cart-link", "aria-current": starts("/cart") ? "page" : null },
          h(
            "svg:svg",
            { class: "cart-icon", viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" },
            h("svg:path", { d: "M3 3h2.6l2.2 11.1a2 2 0 0 0 2 1.6h7.7a2 2 0 0 0 2-1.5L21 7H6.3M10 20.5a1.5 1.5 0 1 1-3 0 1.5 1.5 0 0 1 3 0Zm9 0a1.5 1.5 0 1 1-3 0 1.5 1.5 0 0 1 3 0Z", fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linejoin": "round" }),
          ),
          h("span", {}, "My Cart (", h("span", { id: "cart-count" }, String(cartCount)), h("span", { class: "visually-hidden" }, " items"), ")"),
        ),
      ),
      app.me
        ? [
            navLink("/settings", `Account settings (${app.me.display_user_id || app.me.user_id})`, starts("/settings")),
            h("li", {}, h("button", { type: "button", class: "linklike", id: "sign-out", on: { click: signOut } }, "Sign out")),
          ]
        : [navLink("/sign-in", "Sign in", starts("/sign-in")), navLink("/register", "Register", starts("/register"))],
    ),
  );
}

async function signOut() {
  try {
    await api("DELETE", "/sessions/current");
  } catch (err) {
    console.warn("sign out", err);
  }
  setCsrfToken(null);
  app.me = null;
  await refreshCart();
  navigate("/sign-in?signed_out=1");
}

let renderToken = 0;

async function render(options = {}) {
  const token = ++renderToken;
  shown = location.pathname + location.search;
  const page = document.getElementById("page");
  const status = document.getElementById("page-status");
  const found = match(location.pathname);
  renderHeader();
  if (status && !options.keepStatus) clear(status);
  if (!found) {
    show(page, [h("h1", {}, "Page not found"), h("p", {}, "We could not find that page. ", h("a", { href: "/" }, "Go to the home page"), ".")], options);
    return;
  }
  const { route, params } = found;
  if (route.auth && !app.me) {
    const next = encodeURIComponent(location.pathname + location.search);
    navigate(`/sign-in?next=${next}`, { replace: true });
    return;
  }
  clear(page, loading());
  const ctx = { params, query: new URLSearchParams(location.search), app, path: location.pathname };
  let content;
  try {
    content = await route.page(ctx);
  } catch (err) {
    console.error(err);
    if (err instanceof ApiError && err.status === 401) {
      app.me = null;
      navigate(`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
      return;
    }
    content = [h("h1", {}, route.title || "Something went wrong"), alertBox(err.message || "This page could not be loaded.")];
  }
  if (token !== renderToken || content === undefined) return;
  show(page, content, options);
}

function show(page, content, options) {
  clear(page, content);
  const heading = page.querySelector("h1");
  document.title = heading ? `${heading.textContent} · ${SITE}` : SITE;
  if (options.initial) return;
  const target = page.querySelector("[data-autofocus]") || heading;
  if (target) {
    if (target === heading) heading.setAttribute("tabindex", "-1");
    target.focus();
  }
  window.scrollTo(0, 0);
}

/** Goes to a portal path without reloading; `replace` keeps history tidy after redirects. */
function navigate(url, options = {}) {
  if (options.replace) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  return render(options);
}

function isPortalLink(a) {
  if (!a || a.target || a.hasAttribute("download") || a.dataset.external !== undefined) return false;
  const url = new URL(a.href, location.href);
  return url.origin === location.origin && !url.pathname.startsWith("/api/") && !url.pathname.startsWith("/static/") && !url.pathname.startsWith("/dev/");
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!isPortalLink(a)) return;
  const url = new URL(a.href, location.href);
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

// A jump to an anchor (the skip link) also fires popstate: only a new path or query re-renders.
let shown = location.pathname + location.search;
window.addEventListener("popstate", () => {
  if (location.pathname + location.search === shown) return;
  render();
});

async function start() {
  await Promise.all([refreshMe(), refreshCart()]);
  renderHeader();
  await render({ initial: true });
}

start();

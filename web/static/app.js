/* Shared helpers for the pages: JSON calls to our own API with the session's CSRF token. */
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* Call the API; resolves to {status, ok, data} and never throws on an HTTP error. */
  async function api(method, url, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") {
      init.headers["X-CSRFToken"] = csrfToken();
    }
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { status: 0, ok: false, data: errorBody("network_error", "Could not reach the server. Check the connection and try again.") };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = response.ok ? null : errorBody("bad_response", "The server answered " + response.status + " without details.");
    }
    return { status: response.status, ok: response.ok, data: data };
  }

  function errorBody(code, message) {
    return { error: { code: code, message: message, details: null } };
  }

  /* The message of an API error answer, for people. */
  function errorMessage(result) {
    const error = result && result.data && result.data.error;
    return (error && error.message) || "Something went wrong (HTTP " + (result ? result.status : "?") + ").";
  }

  /* A new element with attributes and children (strings become text, never HTML). */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  window.Dialer = { api: api, csrfToken: csrfToken, el: el, errorMessage: errorMessage, show: show };
})();

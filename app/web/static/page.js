// The page's behaviour: calls the service's JSON API on the same origin
// and shows its answers. Loaded as a file, not inline, so that the strict
// Content-Security-Policy (default-src 'self') needs no exception.
"use strict";

(function () {
  const TOP_K = 5;
  // Kept in this closure only: never written to storage or a cookie.
  let apiKey = "";
  let chosenFile = null;

  const byId = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // Send one request; return its parsed JSON (null for an empty body), or
  // throw an ApiError carrying the service's own code and message.
  async function call(method, path, body, contentType) {
    const headers = new Headers();
    if (contentType) {
      headers.set("Content-Type", contentType);
    }
    if (apiKey) {
      headers.set("Authorization", "Bearer " + apiKey);
    }
    let response;
    try {
      response = await fetch(path, {method, headers, body});
    } catch (error) {
      throw new ApiError("the server could not be reached", "network_error",
                         0);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (error) {
        data = null;
      }
    }
    if (!response.ok) {
      const error = data && data.error;
      throw new ApiError(
        error && error.message ? error.message
          : response.status + " " + response.statusText,
        error && error.code ? error.code : "http_" + response.status,
        response.status);
    }
    return data;
  }

  function show(element, text, isError) {
    element.textContent = text;
    element.classList.toggle("error", Boolean(isError));
  }

  function showError(element, error) {
    const code = error.code ? " (" + error.code + ")" : "";
    show(element, "Error: " + error.message + code, true);
  }

  // --- classification ----------------------------------------------------

  async function loadVersions() {
    const select = byId("model-version");
    try {
      const models = await call("GET", "/models");
      while (select.options.length > 1) {
        select.remove(1);
      }
      for (const version of models.versions || []) {
        const option = document.createElement("option");
        option.value = String(version.version);
        option.textContent = "v" + version.version + " (" +
          version.state.toLowerCase() + ")";
        option.disabled = version.state !== "AVAILABLE";
        select.append(option);
      }
      select.options[0].textContent =
        "default (v" + models.default_version + ")";
    } catch (error) {
      showError(byId("classify-status"), error);
    }
  }

  function choose(file) {
    if (!file) {
      return;
    }
    chosenFile = file;
    byId("image-url").value = "";
    const preview = byId("preview");
    // A data: URL, which the policy's img-src allows; blob: it does not.
    const reader = new FileReader();
    reader.addEventListener("load", () => {
      preview.src = reader.result;
      preview.hidden = false;
    });
    reader.readAsDataURL(file);
    byId("drop-text").textContent = file.name;
    classify();
  }

  function renderPredictions(classes) {
    const list = byId("predictions");
    list.replaceChildren();
    for (const item of classes) {
      const row = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = item.label;
      label.title = item.label + " (class " + item.index + ")";
      const track = document.createElement("span");
      track.className = "track";
      const bar = document.createElement("span");
      bar.className = "bar";
      // Set through the CSSOM, which a policy without 'unsafe-inline'
      // allows; a style attribute in markup it would block.
      bar.style.width = (item.score * 100).toFixed(1) + "%";
      track.append(bar);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = (item.score * 100).toFixed(1) + " %";
      row.append(label, track, score);
      list.append(row);
    }
  }

  async function classify() {
    const status = byId("classify-status");
    const url = byId("image-url").value.trim();
    const version = byId("model-version").value;
    const path = "/predict/model" + (version ? "/v" + version : "") +
      "?top_k=" + TOP_K;
    let body;
    let contentType;
    if (url) {
      body = JSON.stringify({instances: [{url}]});
      contentType = "application/json";
    } else if (chosenFile) {
      body = new FormData();
      body.append("image", chosenFile, chosenFile.name);
    } else {
      show(status, "Choose, drop or paste an image, or give its URL.", true);
      return;
    }
    const button = byId("classify-button");
    button.disabled = true;
    show(status, "Classifying…");
    const started = performance.now();
    try {
      const answer = await call("POST", path, body, contentType);
      const elapsed = performance.now() - started;
      renderPredictions(answer.predictions[0].classes);
      show(status, "Model " + answer.model.name + " v" +
        answer.model.version + ", answered in " + elapsed.toFixed(0) +
        " ms");
    } catch (error) {
      byId("predictions").replaceChildren();
      showError(status, error);
    } finally {
      button.disabled = false;
    }
  }

  function wireClassification() {
    const zone = byId("drop-zone");
    byId("image-file").addEventListener("change", (event) => {
      choose(event.target.files[0]);
    });
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      choose(event.dataTransfer.files[0]);
    });
    document.addEventListener("paste", (event) => {
      const file = [...event.clipboardData.files]
        .find((item) => item.type.startsWith("image/"));
      if (file) {
        event.preventDefault();
        choose(file);
      }
    });
    byId("image-url").addEventListener("input", () => {
      if (byId("image-url").value.trim()) {
        chosenFile = null;
        byId("preview").hidden = true;
        byId("drop-text").textContent =
          "Drop an image here, paste one, or";
      }
    });
    byId("classify-form").addEventListener("submit", (event) => {
      event.preventDefault();
      classify();
    });
  }

  // --- words -------------------------------------------------------------

  function wordPath(word) {
    return "/words/" + encodeURIComponent(word);
  }

  function actionButton(text, label, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = text;
    button.setAttribute("aria-label", label);
    button.addEventListener("click", onClick);
    return button;
  }

  async function listWords() {
    const status = byId("words-status");
    const prefix = byId("prefix").value.trim();
    const query = new URLSearchParams({limit: "50"});
    if (prefix) {
      query.set("prefix", prefix);
    }
    try {
      const page = await call("GET", "/words?" + query);
      const rows = byId("word-rows");
      rows.replaceChildren();
      for (const item of page.words) {
        const row = document.createElement("tr");
        row.dataset.word = item.word;
        const word = document.createElement("td");
        word.textContent = item.word;
        const count = document.createElement("td");
        count.className = "count";
        count.textContent = String(item.count);
        const actions = document.createElement("td");
        actions.className = "actions";
        actions.append(
          actionButton("+1", "Increment " + item.word,
                       () => increment(item.word)),
          " ",
          actionButton("Delete", "Delete " + item.word,
                       () => remove(item.word)));
        row.append(word, count, actions);
        rows.append(row);
      }
      byId("word-total").textContent = page.total + " word" +
        (page.total === 1 ? "" : "s") +
        (prefix ? " starting with “" + prefix + "”" : "") +
        (page.total > page.words.length
          ? ", the first " + page.words.length + " shown" : "");
    } catch (error) {
      showError(status, error);
    }
  }

  async function change(doIt, describe) {
    const status = byId("words-status");
    try {
      const answer = await doIt();
      show(status, describe(answer));
      await listWords();
    } catch (error) {
      showError(status, error);
    }
  }

  function addWord() {
    const word = byId("word-input").value.trim();
    const raw = byId("word-count").value.trim();
    const body = {word};
    if (raw !== "") {
      body.count = Number(raw);
    }
    return change(
      () => call("POST", "/words", JSON.stringify(body), "application/json"),
      (answer) => "Added “" + answer.word + "” with count " + answer.count);
  }

  function increment(word) {
    return change(
      () => call("PATCH", wordPath(word), JSON.stringify({increment: 1}),
                 "application/json"),
      (answer) => "“" + answer.word + "” is now " + answer.count);
  }

  function remove(word) {
    return change(
      () => call("DELETE", wordPath(word)),
      () => "Deleted “" + word + "”");
  }

  async function countText() {
    const result = byId("text-result");
    const text = byId("text-input").value;
    try {
      const answer = await call("POST", "/texts", JSON.stringify({text}),
                                "application/json");
      const counted = Object.entries(answer.counted)
        .map(([word, count]) => word + " " + count).join(", ");
      show(result, answer.words + " word" + (answer.words === 1 ? "" : "s") +
        " counted" + (counted ? ": " + counted : ""));
      await listWords();
    } catch (error) {
      showError(result, error);
    }
  }

  function wireWords() {
    byId("word-form").addEventListener("submit", (event) => {
      event.preventDefault();
      addWord();
    });
    byId("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      listWords();
    });
    byId("text-form").addEventListener("submit", (event) => {
      event.preventDefault();
      countText();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("api-key").addEventListener("input", (event) => {
      apiKey = event.target.value.trim();
    });
    // A new key may open what the last one could not: read again.
    byId("api-key").addEventListener("change", () => {
      show(byId("classify-status"), "");
      show(byId("words-status"), "");
      loadVersions();
      listWords();
    });
    wireClassification();
    wireWords();
    loadVersions();
    listWords();
  });
}());

// Parley's live-caption page: microphone -> AudioWorklet (16 kHz s16le) -> WebSocket /v1/stream -> captions.
// A recording chosen with "Transcribe a file" (or dropped on the captions) goes to POST /v1/transcribe?format=ndjson,
// whose finals show as they are decoded.
//
// Speaks protocol version 1 (docs/protocol.md). No build step: the server serves this folder as it is.
// The page's query string may preset its fields: ?api_key=KEY&model=NAME&language=de&translate=en,fr&languages=en,de
// &talkers=1&redact=1&profanity_filter=1&numerals=0&hotwords=kowalczyk,zentrix%20labs (languages: with automatic
// language detection, the languages to choose from; talkers: number who speaks, for models that can,
// docs/talkers.md; redact: spoken digit strings as [redacted]; profanity_filter: profanity masked, d***;
// numerals=0: numbers in words, not digits; hotwords: the Hotwords field's, comma-separated; encoding=webm (or mp4):
// send the microphone as MediaRecorder records it, about a tenth of the bytes of PCM, for slow links: Opus in WebM where
// the browser records it, else fragmented MP4 (Safari: AAC); audio spoken while a dropped connection is re-established
// is not resent, as PCM's is).

const TARGET_RATE = 16000; // Hz sent to the server: the models' rate, so the server does no resampling
const FRAME_MS = 100; // audio per WebSocket message
const BACKLOG_FRAMES = 100; // audio kept until a connection is ready (10 s); older frames are dropped
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 15000;
const END_TIMEOUT_MS = 10000; // after stop, the longest wait for the server's end
const SPEAKER_COLORS = 6; // style.css defines .spk-0 ... .spk-5
// Errors the client caused: reconnecting would only repeat them.
const FATAL_ERRORS = new Set([
  "unauthorized", "forbidden_origin", "unknown_model", "unsupported_option", "unknown_field", "invalid_value",
  "unsupported_rate", "unsupported_encoding", "bad_json", "bad_message", "bad_audio", "too_big", "not_started",
  "already_started", "after_stop",
]);

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("controls"),
  model: $("model"),
  languageField: $("language-field"),
  language: $("language"),
  translateField: $("translate-field"),
  translate: $("translate"),
  talkersField: $("talkers-field"),
  talkers: $("talkers"),
  apiKey: $("api-key"),
  hotwords: $("hotwords"),
  toggle: $("toggle"),
  file: $("file"),
  fileField: $("file-field"),
  finalize: $("finalize"),
  status: $("status"),
  error: $("error"),
  level: $("level"),
  captions: $("captions"),
  translationsColumn: $("translations-column"),
  translations: $("translations"),
  speakers: $("speakers"),
  clear: $("clear"),
};

let catalog = { default: null, models: [] }; // GET /v1/models
let session = null; // the running capture, see start()
let connection = 0; // increases with every WebSocket, so segment numbers of different connections do not collide
const speakerIndex = new Map(); // speaker label -> color index, in order of appearance
let chosenLanguage = null; // the user's choice of spoken language ("": automatic), kept across models

const languageNames = (() => {
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
  } catch {
    return null;
  }
})();

function languageName(code) {
  try {
    return (languageNames && languageNames.of(code)) || code;
  } catch {
    return code;
  }
}

// ---- Status and errors ----

function setState(state, text) {
  document.body.dataset.state = state;
  ui.status.textContent = text;
  const running = ["starting", "listening", "reconnecting", "stopping", "watching"].includes(state);
  ui.toggle.textContent = running ? "Stop" : "Start";
  ui.toggle.setAttribute("aria-pressed", String(running));
  ui.toggle.disabled = state === "loading" || state === "stopping" || (!running && !catalog.models.length);
  ui.finalize.disabled = state !== "listening";
  const busy = running || state === "transcribing";
  ui.toggle.disabled = ui.toggle.disabled || state === "transcribing";
  ui.file.disabled = busy || state === "loading" || !catalog.models.length;
  ui.fileField.classList.toggle("disabled", ui.file.disabled);
  for (const el of [ui.model, ui.language, ui.apiKey, ui.talkers]) el.disabled = running;
  for (const box of ui.translate.querySelectorAll("input")) box.disabled = running;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

// ---- Models ----

// The hotwords field: phrases separated by commas, as the start's and the context message's "hotwords".
function hotwords() {
  return ui.hotwords.value
    .split(",")
    .map((h) => h.trim().replace(/\s+/g, " "))
    .filter((h) => h);
}

function apiKey() {
  return ui.apiKey.value.trim();
}

function currentModel() {
  return catalog.models.find((m) => m.name === ui.model.value) || null;
}

async function loadModels() {
  setState("loading", "Loading the server's models…");
  const headers = apiKey() ? { "X-API-Key": apiKey() } : {};
  let response;
  try {
    response = await fetch("v1/models", { headers, cache: "no-store" });
  } catch {
    catalog = { default: null, models: [] };
    renderModels();
    setState("error", "The server cannot be reached.");
    showError("Cannot reach the Parley server. Check that it is running, then reload the page.");
    return;
  }
  if (response.status === 401) {
    catalog = { default: null, models: [] };
    renderModels();
    setState("error", "An API key is needed.");
    showError(
      apiKey() ? "The server did not accept this API key." : "This server needs an API key: enter it above.",
    );
    ui.apiKey.focus();
    return;
  }
  if (!response.ok) {
    setState("error", "The server's model list is unavailable.");
    showError(`The server answered ${response.status} to GET /v1/models.`);
    return;
  }
  catalog = await response.json();
  renderModels();
  showError(catalog.models.length ? "" : "The server has no model loaded yet.");
  setState("idle", catalog.models.length ? "Press Start and speak, or transcribe a file." : "No model available.");
}

function renderModels() {
  const wanted = ui.model.value || params.get("model") || catalog.default;
  ui.model.replaceChildren(
    ...catalog.models.map((m) => {
      const o = new Option(m.name, m.name);
      o.selected = m.name === wanted;
      return o;
    }),
  );
  renderModelOptions();
}

// The chosen model's languages and translation targets (GET /v1/models: "languages", "translate", and "auto": the
// languages its identifier detects, present only when it has one).
function renderModelOptions() {
  const m = currentModel();
  const languages = (m && m.languages) || [];
  const detects = (m && m.auto) || [];
  const targets = (m && m.translate) || [];
  const wantedLanguage = chosenLanguage ?? params.get("language") ?? "";
  const choices = detects.length ? [new Option("Automatic", "")] : []; // omitted language: the model detects it
  for (const code of languages) choices.push(new Option(languageName(code), code));
  const wanted = choices.find((o) => o.value === wantedLanguage || (wantedLanguage === "auto" && o.value === ""));
  if (wanted) wanted.selected = true;
  ui.language.replaceChildren(...choices);
  ui.languageField.hidden = choices.length < 2;

  const wantedTargets = new Set(
    [...ui.translate.querySelectorAll("input:checked")].map((b) => b.value).concat(
      (params.get("translate") || "").split(",").filter(Boolean),
    ),
  );
  ui.translate.replaceChildren(
    ...targets.map((code) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = code;
      box.checked = wantedTargets.has(code);
      label.append(box, " ", languageName(code));
      return label;
    }),
  );
  ui.translateField.hidden = targets.length === 0;
  // Talkers (GET /v1/models: "talkers": true): finals number who speaks across the session.
  const canNumber = Boolean(m && m.talkers);
  if (canNumber && ui.talkersField.hidden) {
    ui.talkers.checked = ui.talkers.checked || ["1", "true"].includes(params.get("talkers"));
  }
  ui.talkersField.hidden = !canNumber;
  updateTranslationsColumn();
}

function multilingual() {
  const m = currentModel();
  return Boolean(m && ((m.languages || []).length > 1 || (m.auto || []).length));
}

function chosenTargets() {
  return [...ui.translate.querySelectorAll("input:checked")].map((b) => b.value);
}

function updateTranslationsColumn() {
  ui.translationsColumn.hidden = chosenTargets().length === 0 && !ui.translations.childElementCount;
}

// ---- Captions ----

// A word's speaker label: its talker ("talker:N", the same person across the session) in a final that numbers
// talkers, else its virtual channel (a number) where the model splits talkers.
function speakerOf(word, i, msg) {
  if (Array.isArray(msg.talkers)) return word && Number.isInteger(word.talker) ? `talker:${word.talker}` : null;
  if (word && word.speaker !== undefined && word.speaker !== null) return word.speaker;
  if (Array.isArray(msg.speakers) && msg.speakers.length === (msg.words || []).length) {
    const s = msg.speakers[i];
    if (s !== null && typeof s !== "object") return s;
  }
  if (msg.speaker !== undefined && msg.speaker !== null) return msg.speaker;
  return null;
}

function speakerClass(label) {
  const key = String(label);
  if (!speakerIndex.has(key)) {
    speakerIndex.set(key, speakerIndex.size);
    renderSpeakerLegend();
  }
  return `spk spk-${speakerIndex.get(key) % SPEAKER_COLORS}`;
}

function speakerName(label) {
  if (typeof label === "string" && label.startsWith("talker:")) return `Talker ${Number(label.slice(7)) + 1}`;
  return typeof label === "number" ? `Speaker ${label + 1}` : `Speaker ${label}`;
}

function renderSpeakerLegend() {
  ui.speakers.replaceChildren(
    ...[...speakerIndex.keys()].map((key) => {
      const span = document.createElement("span");
      const label = /^\d+$/.test(key) ? Number(key) : key;
      span.className = speakerClass(label);
      span.textContent = speakerName(label);
      return span;
    }),
  );
  ui.speakers.hidden = speakerIndex.size === 0;
}

function wordSpan(text, speaker) {
  const span = document.createElement("span");
  span.textContent = text;
  if (speaker !== null) {
    span.className = speakerClass(speaker);
    span.title = speakerName(speaker);
  }
  return span;
}

// A message's text as nodes: words colored by speaker where the message says who spoke.
function captionNodes(msg) {
  // Per-speaker channels (t-SOT): [{speaker, text}, ...]; a final that numbers talkers colours its words instead.
  const channels = Array.isArray(msg.speakers) && msg.speakers.length && typeof msg.speakers[0] === "object";
  if (channels && !Array.isArray(msg.talkers)) {
    return msg.speakers
      .filter((s) => s && s.text)
      .map((s) => {
        const line = document.createElement("span");
        line.className = "speaker-line";
        line.append(wordSpan(s.text, s.speaker ?? s.channel ?? null));
        return line;
      });
  }
  let words = Array.isArray(msg.words) && msg.words.length ? msg.words : null;
  let tokens = words ? words.map((w) => w.word) : (msg.text || "").split(/\s+/).filter(Boolean);
  // A final the model punctuated and cased: its display text, each token on the word it writes ("$5.50" on the
  // first of "five dollars and fifty cents"), where the two line up (Chinese display has no spaces: shown whole).
  if (typeof msg.display === "string" && msg.display.trim()) {
    const shown = msg.display.trim().split(/\s+/);
    const aligned = !words || shown.length === words.length ? [shown, words] : alignDisplay(shown, words);
    [tokens, words] = aligned || [[msg.display.trim()], null];
  }
  // A partial's settled words (its leading `stable` characters, which no later text changes) show as plain text.
  const stable = !msg.display && typeof msg.stable === "number" ? msg.stable : 0;
  const text = msg.text || "";
  let at = 0;
  const nodes = [];
  tokens.forEach((token, i) => {
    if (i) nodes.push(document.createTextNode(" "));
    const span = wordSpan(token, speakerOf(words ? words[i] : null, i, msg));
    const found = text.indexOf(token, at);
    if (found >= 0) at = found + token.length;
    if (stable && found >= 0 && at <= stable) span.classList.add("settled");
    nodes.push(span);
  });
  return nodes;
}

// Display tokens lined up with the recognized words they write: the words both have (whatever case and
// punctuation) pair up, and the tokens between two such pairs (a number written in digits, server/itn.py) go with the
// first of the words between them. Null where a run of tokens has no word or a run of words no token.
function alignDisplay(shown, words) {
  const key = (t) => t.toLowerCase().replace(/^[^\p{L}\p{N}$€\[]+|[^\p{L}\p{N}%\]]+$/gu, "");
  const a = shown.map(key);
  const b = words.map((w) => key(w.word));
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const tokens = [];
  const owners = [];
  let [i, j, gi, gj] = [0, 0, 0, 0];
  const flush = () => {
    if ((i > gi) !== (j > gj)) return false;
    for (let k = gi; k < i; k++) [tokens[tokens.length], owners[owners.length]] = [shown[k], words[gj]];
    return true;
  };
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j] && lcs[i][j] === lcs[i + 1][j + 1] + 1) {
      if (!flush()) return null;
      tokens.push(shown[i]);
      owners.push(words[j]);
      [i, j] = [i + 1, j + 1];
      [gi, gj] = [i, j];
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) j++;
    else i++;
  }
  return flush() ? [tokens, owners] : null;
}

// Partials whose connection ended will never get their finals: their text stays, no longer greyed.
function settlePartials() {
  for (const el of document.querySelectorAll(".partial")) {
    el.classList.replace("partial", "interrupted");
    el.removeAttribute("aria-hidden");
  }
}

function keyOf(msg) {
  return `${connection}-${msg.segment}`;
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
}

function place(container, key, el) {
  const stick = nearBottom(container);
  const old = container.querySelector(`[data-key="${key}"]`);
  if (old) old.replaceWith(el);
  else container.append(el);
  if (stick) container.scrollTop = container.scrollHeight;
}

function languageTag(code) {
  const tag = document.createElement("span");
  tag.className = "lang";
  tag.textContent = code;
  tag.title = languageName(code);
  tag.setAttribute("aria-hidden", "true"); // the element's lang attribute tells screen readers
  return tag;
}

function showCaption(msg, final) {
  const key = keyOf(msg);
  const text = (msg.text || "").trim();
  if (!text && !(Array.isArray(msg.speakers) && msg.speakers.length)) {
    // Nothing said: an empty final closes the segment without a caption line (its translations may still show).
    if (final) ui.captions.querySelector(`[data-key="${key}"]`)?.remove();
  } else {
    const p = document.createElement("p");
    p.className = `caption ${final ? "final" : "partial"}`;
    p.dataset.key = key;
    p.dataset.segment = msg.segment;
    if (!final) p.setAttribute("aria-hidden", "true"); // screen readers hear each line once, when it is final
    const words = document.createElement("span");
    words.className = "words";
    words.append(...captionNodes(msg));
    if (msg.language) {
      p.lang = msg.language; // the detected language (multilingual models), for screen readers and fonts
      if (multilingual()) p.append(languageTag(msg.language), " ");
    }
    p.append(words);
    // A new element (not a text change) so that the live region announces the final.
    place(ui.captions, key, p);
  }
  showTranslations(msg, key, final);
}

function showTranslations(msg, key, final) {
  const translations = msg.translations;
  if (!translations || typeof translations !== "object") return;
  const entries = Object.entries(translations).filter(([, text]) => typeof text === "string" && text.trim());
  if (!entries.length) {
    if (final) ui.translations.querySelector(`[data-key="${key}"]`)?.remove();
    return;
  }
  const row = document.createElement("div");
  row.className = `translation ${final ? "final" : "partial"}`;
  row.dataset.key = key;
  for (const [code, text] of entries) {
    const p = document.createElement("p");
    p.lang = code;
    p.append(languageTag(code), " ", text);
    row.append(p);
  }
  place(ui.translations, key, row);
  ui.translationsColumn.hidden = false;
}

// ---- Capture and streaming ----

function microphoneError(e) {
  switch (e && e.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar), then press Start again.";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Start again.";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "The microphone cannot be opened: another application may be using it.";
    default:
      return `The microphone cannot be used: ${(e && e.message) || e}`;
  }
}

function fieldChoices() {
  return {
    model: ui.model.value, // the server says unknown_model if its list changed since the page loaded
    language: ui.languageField.hidden ? null : ui.language.value || null,
    translate: chosenTargets(),
    talkers: !ui.talkersField.hidden && ui.talkers.checked,
    // Automatic detection among these only (?languages=en,de): fewer wrong guesses for a known speaker.
    languages:
      ui.languageField.hidden || ui.language.value ? [] : (params.get("languages") || "").split(",").filter(Boolean),
  };
}

async function start() {
  showError("");
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("The microphone is only available on secure pages: open this page over https:// (or on localhost).");
    return;
  }
  if (!ui.model.value) return;
  const s = {
    ...fieldChoices(),
    opus: wantsRecorded(), // {encoding, mimeType} of a compressed recording, or null: PCM
    chain: Promise.resolve(),
    recorder: null,
    backlog: [],
    ws: null,
    ready: false,
    stopping: false,
    fatal: false,
    attempts: 0,
    timer: null,
    sampleRate: null,
  };
  session = s;
  setState("starting", "Asking for the microphone…");
  try {
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    session = null;
    setState("idle", "Microphone unavailable.");
    showError(microphoneError(e));
    return;
  }
  if (session !== s) {
    teardownAudio(s); // stopped while the browser was asking
    return;
  }
  // Recording from the moment the microphone is granted: what is said while the worklet loads and the connection
  // opens is held and goes out at ready, as the PCM path's backlog does.
  if (s.opus) startRecorder(s);
  try {
    s.ctx = new AudioContext();
    await s.ctx.audioWorklet.addModule(new URL("worklet.js", import.meta.url));
    s.node = new AudioWorkletNode(s.ctx, "parley-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      processorOptions: { targetRate: TARGET_RATE, frameMs: FRAME_MS },
    });
    s.sampleRate = s.ctx.sampleRate > TARGET_RATE ? TARGET_RATE : s.ctx.sampleRate;
    s.node.port.onmessage = (e) => onWorkletMessage(s, e.data);
    s.source = s.ctx.createMediaStreamSource(s.stream);
    s.source.connect(s.node);
    s.node.connect(s.ctx.destination); // the worklet writes silence; connected, it is processed in every browser
    await s.ctx.resume();
    if (session !== s) throw new Error("stopped");
  } catch (e) {
    if (session !== s) {
      teardownAudio(s);
      return;
    }
    teardownAudio(s);
    session = null;
    setState("idle", "Audio capture failed.");
    showError(`The browser cannot process the microphone's audio: ${e.message || e}`);
    return;
  }
  for (const track of s.stream.getAudioTracks()) {
    track.onended = () => {
      if (session !== s || s.stopping) return;
      showError("The microphone was disconnected.");
      stop();
    };
  }
  connect(s);
}

// ?encoding=webm or mp4: MediaRecorder's chunks go out instead of the worklet's PCM, in the container asked for where
// the browser records it, else the other (Safari records only MP4, its AAC; Chrome both).
const RECORDED = [
  { encoding: "webm", mimeType: "audio/webm;codecs=opus" },
  { encoding: "mp4", mimeType: "audio/mp4" },
];
const OPUS_CHUNK_MS = 250;

// The recording to send ({encoding, mimeType}), or null: PCM.
function wantsRecorded() {
  const asked = params.get("encoding");
  if (!RECORDED.some((r) => r.encoding === asked) || !window.MediaRecorder) return null;
  const order = [...RECORDED].sort((a, b) => (b.encoding === asked) - (a.encoding === asked));
  return order.find((r) => MediaRecorder.isTypeSupported(r.mimeType)) || null;
}

// A recorder per connection (each connection's first chunk carries the container's header it needs), started before
// its connection is ready: its chunks are held until ready (sendRecorded), then go out as they come.
function startRecorder(s) {
  const recorder = new MediaRecorder(s.stream, { mimeType: s.opus.mimeType });
  recorder.held = [];
  recorder.ws = null; // its connection, set by connect
  recorder.ondataavailable = (e) => {
    // In order: each chunk's bytes are read asynchronously, and stop must follow the last of them.
    s.chain = s.chain.then(async () => {
      const bytes = await e.data.arrayBuffer();
      if (bytes.byteLength) recorder.held.push(bytes);
      sendRecorded(s, recorder);
    });
  };
  recorder.start(OPUS_CHUNK_MS);
  s.recorder = recorder;
}

// Sends what `recorder` holds once its connection is ready (dropped with a connection that closes before).
function sendRecorded(s, recorder) {
  const ws = recorder.ws;
  if (!ws || s.ws !== ws || !s.ready || ws.readyState !== WebSocket.OPEN) return;
  for (const bytes of recorder.held.splice(0)) ws.send(bytes);
}

function dropRecorder(s) {
  if (!s.recorder) return;
  s.recorder.ondataavailable = null;
  if (s.recorder.state !== "inactive") s.recorder.stop();
  s.recorder = null;
}

function onWorkletMessage(s, data) {
  if (s.opus) {
    if (data.type === "audio") ui.level.value = Math.min(1, data.level * 4); // the meter only: Opus goes out
    return;
  }
  if (data.type === "audio") {
    if (s.flushed) return; // a frame completed after the flush: stop has gone out, nothing may follow it
    ui.level.value = Math.min(1, data.level * 4);
    if (s.ws && s.ws.readyState === WebSocket.OPEN && s.ready) {
      s.ws.send(data.pcm);
    } else {
      // Kept until the server is ready: a server that refuses the stream (server_full, shutting_down) accepts the
      // connection and closes it at once, and whatever was sent to it is lost.
      s.backlog.push(data.pcm);
      if (s.backlog.length > BACKLOG_FRAMES) s.backlog.shift();
    }
  } else if (data.type === "flushed" && s.stopping) {
    s.flushed = true;
    if (s.ws && s.ws.readyState === WebSocket.OPEN && s.ready) sendBacklogAndStop(s);
    else if (!(s.ws && s.ws.readyState === WebSocket.OPEN && s.started)) finish(s, "Stopped.");
    // else: started, not ready yet: the backlog and stop go out when ready comes (onServerMessage)
  }
}

// Sends the audio kept while no connection was ready, then stop if the worklet has flushed the last of it.
function sendBacklogAndStop(s) {
  for (const pcm of s.backlog.splice(0)) s.ws.send(pcm);
  if (s.flushed) s.ws.send(JSON.stringify({ type: "stop" }));
}

function streamUrl() {
  const url = new URL("v1/stream", document.baseURI);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (apiKey()) url.searchParams.set("api_key", apiKey()); // browsers cannot set headers on a WebSocket
  return url.href;
}

// What a stream or an upload asks for: the fields' choices and the page's query options (a start message's fields).
function choices(s) {
  const out = { model: s.model };
  if (s.language) out.language = s.language;
  if (s.translate.length) out.translate = s.translate;
  if (s.languages.length) out.languages = s.languages;
  if (s.talkers) out.talkers = true;
  const words = hotwords();
  if (words.length) out.hotwords = words;
  if (["1", "true"].includes(params.get("redact"))) out.redact = true;
  if (["1", "true"].includes(params.get("profanity_filter"))) out.profanity_filter = true;
  if (["0", "false"].includes(params.get("numerals"))) out.numerals = false;
  return out;
}

function connect(s) {
  if (session !== s) return;
  connection += 1;
  s.ready = false;
  s.started = false;
  s.error = null;
  setState(s.attempts ? "reconnecting" : "starting", s.attempts ? "Reconnecting…" : "Connecting…");
  let ws;
  try {
    ws = new WebSocket(streamUrl());
  } catch (e) {
    s.fatal = true;
    showError(`Cannot open a connection to the server: ${e.message || e}`);
    stop();
    return;
  }
  s.ws = ws;
  ws.binaryType = "arraybuffer";
  if (s.opus && !s.stopping) {
    if (!s.recorder) startRecorder(s); // a reconnection: a new recording, with its own header
    s.recorder.ws = ws;
  }
  ws.onopen = () => {
    const audio = s.opus ? { encoding: s.opus.encoding } : { sample_rate: s.sampleRate, encoding: "s16le" };
    const start = { type: "start", ...audio, partials: true, ...choices(s) };
    s.hotwords = start.hotwords || [];
    ws.send(JSON.stringify(start));
    s.started = true; // the audio waits for ready (see onWorkletMessage)
  };
  ws.onmessage = (e) => {
    if (s.ws !== ws) return;
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    onServerMessage(s, msg);
  };
  ws.onclose = (e) => onClose(s, ws, e);
}

function onServerMessage(s, msg) {
  switch (msg.type) {
    case "ready":
      s.ready = true;
      s.attempts = 0;
      if (s.opus) {
        // The recording held while connecting, then stop if it was asked for meanwhile (in order, after the chunks).
        const recorder = s.recorder;
        s.chain = s.chain.then(() => {
          if (recorder) sendRecorded(s, recorder);
          if (s.flushed && s.ws && s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ type: "stop" }));
        });
      } else {
        sendBacklogAndStop(s);
      }
      if (s.stopping) break; // stopped while connecting: the state stays "stopping" until end
      showError("");
      setState("listening", `Listening (${msg.model}).`);
      break;
    case "partial":
      showCaption(msg, false);
      break;
    case "final":
      showCaption(msg, true);
      break;
    case "end":
      s.ended = true;
      break;
    case "error":
      s.error = msg;
      if (FATAL_ERRORS.has(msg.code)) {
        s.fatal = true;
        showError(`The server refused the stream: ${msg.message} (${msg.code})`);
      } else {
        showError(`The server ended the stream: ${msg.message} (${msg.code})`);
      }
      break;
    default:
      break; // messages of later protocol versions
  }
}

function onClose(s, ws, e) {
  if (session !== s || s.ws !== ws) return;
  s.ws = null;
  dropRecorder(s);
  settlePartials();
  if (s.stopping) {
    finish(s, s.ended ? "Stopped." : "Stopped (the server closed before the last captions).");
    return;
  }
  if (s.fatal) {
    stop(true);
    return;
  }
  // Lost: the network, a restarting or full server. Keep the microphone and try again, waiting longer each time.
  const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** s.attempts) * (0.75 + Math.random() * 0.5);
  s.attempts += 1;
  const why = s.error ? s.error.message : e.code === 1006 ? "the connection was lost" : `closed (${e.code})`;
  setState("reconnecting", `Connection lost: ${why}. Reconnecting in ${Math.ceil(delay / 1000)} s (attempt ${s.attempts})…`);
  if (!s.error) showError("The connection to the server was lost. Captions resume when it is back.");
  s.timer = setTimeout(() => connect(s), delay);
}

// Stops capturing; the server gets a stop and sends the last finals, unless `now`.
function stop(now = false) {
  const s = session;
  if (!s || s.stopping) return;
  s.stopping = true;
  clearTimeout(s.timer);
  if (now || !s.ws || !s.started) {
    if (s.ws) s.ws.close(1000);
    finish(s, "Stopped.");
    return;
  }
  setState("stopping", "Finishing the last captions…");
  if (s.opus) {
    const ws = s.ws;
    if (s.recorder) {
      // The recorder's last chunk, then stop; a connection not ready yet gets both with ready.
      s.recorder.onstop = () =>
        s.chain.then(() => {
          if (s.ready && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
          else s.flushed = true;
        });
      s.recorder.stop();
    } else if (s.ready) {
      ws.send(JSON.stringify({ type: "stop" }));
    } else {
      s.flushed = true; // stop goes out with ready (sendBacklogAndStop)
    }
  } else {
    s.node.port.postMessage({ type: "flush" }); // the worklet answers "flushed"; then stop goes out
  }
  teardownAudio(s, false);
  s.timer = setTimeout(() => finish(s, "Stopped (no answer from the server)."), END_TIMEOUT_MS);
}

function teardownAudio(s, closeWorklet = true) {
  if (s.stream) for (const t of s.stream.getTracks()) t.stop();
  if (s.source) s.source.disconnect();
  if (closeWorklet && s.ctx && s.ctx.state !== "closed") s.ctx.close();
}

function finish(s, text) {
  if (session !== s) return;
  clearTimeout(s.timer);
  if (s.recorder && !s.stopping) dropRecorder(s); // a stop's recorder still sends its last chunk
  teardownAudio(s);
  if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000);
  session = null;
  settlePartials();
  ui.level.value = 0;
  setState("idle", text);
}

// ---- Wiring ----

const params = new URLSearchParams(location.search);
if (params.has("api_key")) {
  ui.apiKey.value = params.get("api_key");
  // Keep the key out of the address bar, bookmarks and screenshots.
  params.delete("api_key");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  params.set("api_key", ui.apiKey.value);
}

if (params.has("hotwords")) ui.hotwords.value = params.get("hotwords");

ui.toggle.addEventListener("click", () => (session ? stop() : watching ? watching.close(1000) : start()));
// End line: the server closes the open segment now and sends its final; the stream goes on (docs/protocol.md).
ui.finalize.addEventListener("click", () => {
  const s = session;
  if (s && s.ready && !s.stopping && s.ws && s.ws.readyState === WebSocket.OPEN) {
    s.ws.send(JSON.stringify({ type: "finalize" }));
  }
});
// Hotwords changed while captioning: a context message gives the stream the new ones, from its next line on
// (docs/protocol.md); before a session they go in its start.
ui.hotwords.addEventListener("change", () => {
  const s = session;
  const now = hotwords();
  if (s && s.ready && !s.stopping && s.ws && s.ws.readyState === WebSocket.OPEN) {
    if (JSON.stringify(now) !== JSON.stringify(s.hotwords || [])) {
      s.ws.send(JSON.stringify({ type: "context", hotwords: now }));
      s.hotwords = now;
    }
  }
});
ui.model.addEventListener("change", () => renderModelOptions());
ui.language.addEventListener("change", () => {
  chosenLanguage = ui.language.value;
});
ui.translate.addEventListener("change", () => updateTranslationsColumn());
ui.apiKey.addEventListener("change", () => loadModels());
ui.form.addEventListener("submit", (e) => e.preventDefault());
ui.clear.addEventListener("click", () => {
  ui.captions.replaceChildren();
  ui.translations.replaceChildren();
  speakerIndex.clear();
  renderSpeakerLegend();
  updateTranslationsColumn();
});
window.addEventListener("online", () => {
  const s = session;
  if (s && !s.ws && !s.stopping && s.timer) {
    clearTimeout(s.timer);
    connect(s);
  }
});

// ---- A recording ----

// POST /v1/transcribe?format=ndjson: the file as it is (the server reads its format from the bytes), its finals
// shown as they are decoded, then the end line (docs/protocol.md).
async function transcribeFile(file) {
  if (!file || session || document.body.dataset.state === "transcribing" || !ui.model.value) return;
  showError("");
  connection += 1; // its segments are keyed apart from any stream's
  const query = new URLSearchParams({ format: "ndjson" });
  for (const [name, value] of Object.entries(choices(fieldChoices()))) {
    query.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  const headers = { "Content-Type": file.type.startsWith("audio/") ? file.type : "audio/x-file" };
  if (apiKey()) headers["X-API-Key"] = apiKey();
  setState("transcribing", `Transcribing ${file.name}…`);
  let decoded = 0;
  let ended = false;
  try {
    const response = await fetch(new URL(`v1/transcribe?${query}`, document.baseURI), {
      method: "POST",
      body: file,
      headers,
    });
    if (!response.ok) {
      let reason = `HTTP ${response.status}`;
      try {
        const body = await response.json();
        reason = `${body.message} (${body.code})`;
      } catch {}
      throw new Error(reason);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.type === "final") {
          showCaption(msg, true);
          decoded = Math.max(decoded, msg.end || 0);
          ui.status.textContent = `Transcribing ${file.name}… ${Math.round(decoded)} s decoded`;
        } else if (msg.type === "error") {
          throw new Error(`${msg.message} (${msg.code})`);
        } else if (msg.type === "end") {
          ended = true;
        }
      }
    }
    if (!ended) throw new Error("the connection ended before the transcript did");
    setState("idle", `Transcribed ${file.name} (${Math.round(decoded)} s).`);
  } catch (e) {
    setState("idle", `Could not transcribe ${file.name}.`);
    showError(`The server could not transcribe ${file.name}: ${e.message || e}`);
  } finally {
    ui.file.value = "";
  }
}

// ---- Watching a phone call ----

// ?call=UUID: an Asterisk call's captions as they come (WS /v1/calls/{uuid}, docs/asterisk.md) instead of this
// microphone: the screen beside an agent's phone. Stop ends the watching, not the call; Start then uses the microphone.
let watching = null; // the call's WebSocket while watching

function watchCall(uuid) {
  showError("");
  const url = new URL(`v1/calls/${encodeURIComponent(uuid)}`, document.baseURI);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (apiKey()) url.searchParams.set("api_key", apiKey());
  connection += 1; // its segments are keyed apart from any stream's
  const ws = new WebSocket(url.href);
  watching = ws;
  let ended = false;
  setState("watching", `Waiting for call ${uuid}…`);
  ws.onmessage = (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    if (msg.type === "ready") setState("watching", `Captioning call ${uuid} (${msg.model}, ${msg.sample_rate} Hz).`);
    else if (msg.type === "partial") showCaption(msg, false);
    else if (msg.type === "final") showCaption(msg, true);
    else if (msg.type === "dtmf") ui.status.textContent = `Call ${uuid}: key ${msg.digit} at ${msg.time.toFixed(1)} s.`;
    else if (msg.type === "end") ended = true;
    else if (msg.type === "error") showError(`${msg.message} (${msg.code})`);
  };
  ws.onclose = () => {
    if (watching !== ws) return;
    watching = null;
    settlePartials();
    setState("idle", ended ? `Call ${uuid} ended.` : `Stopped watching call ${uuid}.`);
  };
}

ui.file.addEventListener("change", () => transcribeFile(ui.file.files[0]));
for (const zone of [ui.captions, ui.translations]) {
  zone.addEventListener("dragover", (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) e.preventDefault();
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    transcribeFile(e.dataTransfer && e.dataTransfer.files[0]);
  });
}

loadModels().then(() => {
  if (params.get("call") && document.body.dataset.state === "idle") watchCall(params.get("call"));
});

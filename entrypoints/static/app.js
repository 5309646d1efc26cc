// The playground: plain JavaScript, no build step, no network beyond this service.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "voicepipe.api-key";
// What tests and curious developers can read: playback and results as they happen.
const state = (window.voicepipe = {
  playedSeconds: 0, scheduledSeconds: 0, partials: 0, finals: [], statsUpdates: 0,
  // Talk: 24 kHz samples sent and played, answers finished, and each exchange so far.
  talkSentSamples: 0, talkPlayedSamples: 0, talkResponses: 0, talkInterruptions: 0, talkTurns: [],
  talkBargeIns: [], // for each speech start during an answer: how many of its sounds were queued
});

const FRIENDLY = {
  unauthorized: "This service needs an API key: enter it at the top of the page.",
  invalid_token: "The connection could not be authorised; check the API key.",
  rate_limited: "You have reached a limit for this key. Wait a moment and try again.",
  busy: "The model is busy right now. Try again in a moment.",
  empty_text: "Type something to say first.",
  text_too_long: "That text is too long for one request.",
  unknown_voice: "That voice is not available here.",
  unsupported_format: "That audio format is not supported.",
  invalid_audio: "That file is not audio the service can read.",
  audio_too_large: "That file is too large.",
  audio_too_long: "That recording is too long.",
  synthesis_failed: "No voice could speak this right now. Try again shortly.",
  forbidden_origin: "This page may not open a connection to the service (WS_ALLOWED_ORIGINS).",
  too_many_connections: "The service has too many open connections. Try again shortly.",
  idle_timeout: "The connection was idle and closed; it reopens on the next use.",
};

function explain(body, status) {
  if (body && body.error && typeof body.error === "object") body = body.error; // OpenAI's shape
  if (!body || !body.code) return `The service answered with HTTP ${status}.`;
  const friendly = FRIENDLY[body.code];
  return friendly ? `${friendly} (${body.message})` : body.message;
}

function say(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function badges(list, items) {
  list.replaceChildren(
    ...items.filter(Boolean).map(([name, value, warn]) => {
      const item = document.createElement("li");
      item.textContent = `${name}: ${value}`;
      if (warn) item.className = "warn";
      return item;
    }),
  );
}

function sentimentBadges(sentiment) {
  if (!sentiment) return [];
  return [["sentiment", sentiment.label], ["emotion", sentiment.emotion]];
}

// ---- API key ---------------------------------------------------------------------------

let apiKey = localStorage.getItem(KEY_STORE) || "";

function askForKey() {
  $("key-form").hidden = false;
  $("api-key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("api-key").value.trim();
  localStorage.setItem(KEY_STORE, apiKey);
  $("key-form").hidden = true;
  closeSockets();
  loadVoices();
  refreshStats();
});

function authHeaders() {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) {
    if (response.status === 401) askForKey();
    const error = new Error(explain(body, response.status));
    error.code = body && body.code;
    throw error;
  }
  return body;
}

// ---- WebSockets ------------------------------------------------------------------------

const sockets = {};

function closeSockets() {
  for (const name of Object.keys(sockets)) {
    sockets[name].close();
    delete sockets[name];
  }
}

// A socket per use (speaking, listening); with a key, a one-time token rides as a subprotocol.
async function socketFor(name, onMessage) {
  const existing = sockets[name];
  if (existing && existing.readyState === WebSocket.OPEN) {
    existing.onmessage = onMessage;
    return existing;
  }
  let protocols = [];
  if (apiKey) protocols = (await api("/api/token", { method: "POST" })).subprotocols;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/voice`;
  const socket = new WebSocket(url, protocols);
  socket.binaryType = "arraybuffer";
  sockets[name] = socket;
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("Could not connect to the service's WebSocket."));
  });
  socket.onmessage = onMessage;
  socket.onclose = (event) => {
    if (sockets[name] === socket) delete sockets[name];
    if (event.code === 1008) askForKey();
  };
  return socket;
}

// ---- Speak -----------------------------------------------------------------------------

let voices = {};

async function loadVoices() {
  try {
    const health = await api("/health");
    showTalkReady(health.components.conversation);
    voices = health.components.tts.providers;
    const provider = $("tts-provider");
    provider.replaceChildren(new Option("Automatic (fallback order)", ""));
    for (const name of Object.keys(voices)) provider.add(new Option(name, name));
    fillVoices();
  } catch (error) {
    say($("tts-status"), error.message, true);
  }
}

function fillVoices() {
  const chosen = $("tts-provider").value;
  const select = $("tts-voice");
  select.replaceChildren(new Option("Default", ""));
  for (const [provider, names] of Object.entries(voices)) {
    if (chosen && provider !== chosen) continue;
    for (const name of names) select.add(new Option(`${name} (${provider})`, name));
  }
  if (chosen && select.options.length > 1) select.selectedIndex = 1;
}

$("tts-provider").addEventListener("change", fillVoices);

// Web Audio player: each PCM chunk is scheduled right after the previous one.
const player = {
  context: null,
  next: 0,
  start() {
    this.context = this.context || new AudioContext();
    this.context.resume();
    this.next = this.context.currentTime + 0.05;
  },
  enqueue(pcm, rate) {
    const samples = new Int16Array(pcm);
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.onended = () => { state.playedSeconds += buffer.duration; };
    this.next = Math.max(this.next, this.context.currentTime);
    source.start(this.next);
    this.next += buffer.duration;
    state.scheduledSeconds += buffer.duration;
  },
};

function wavBlob(chunks, rate) {
  const length = chunks.reduce((sum, c) => sum + c.byteLength, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((ch, i) => header.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF"); header.setUint32(4, 36 + length, true); text(8, "WAVE"); text(12, "fmt ");
  header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true); header.setUint16(34, 16, true); text(36, "data");
  header.setUint32(40, length, true);
  return new Blob([header.buffer, ...chunks], { type: "audio/wav" });
}

async function speak() {
  const text = $("tts-text").value;
  const voice = $("tts-voice").value || null;
  const format = $("tts-format").value;
  $("tts-go").disabled = true;
  say($("tts-status"), "Speaking…");
  badges($("tts-badges"), []);
  try {
    if (format === "stream") await speakStreamed(text, voice);
    else await speakOnce(text, voice, format);
  } catch (error) {
    say($("tts-status"), error.message, true);
  } finally {
    $("tts-go").disabled = false;
  }
}

async function speakOnce(text, voice, format) {
  const started = performance.now();
  const body = await api("/api/tts", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text, voice, format }),
  });
  const audio = $("tts-audio");
  audio.src = `data:${body.content_type};base64,${body.audio_base64}`;
  audio.play().catch(() => {});
  audio.onended = () => { state.playedSeconds += audio.duration; };
  say($("tts-status"), `Done: ${body.duration.toFixed(2)} s of ${body.format}.`);
  badges($("tts-badges"), [
    ["latency", `${body.latency_ms.toFixed(0)} ms`],
    ["first audio", `${(performance.now() - started).toFixed(0)} ms (whole clip)`],
    ["cache", body.cached ? "hit" : "miss"],
    ["provider", body.provider],
    ["voice", body.voice],
    ["fallback", body.fallback ? "yes" : "no", body.fallback],
    ...sentimentBadges(body.sentiment),
  ]);
}

async function speakStreamed(text, voice) {
  player.start();
  const chunks = [];
  let rate = 22050;
  let firstAt = null;
  let start = {};
  const sent = performance.now();
  await new Promise((resolve, reject) => {
    socketFor("speak", (event) => {
      if (typeof event.data !== "string") {
        if (firstAt === null) {
          firstAt = performance.now() - sent;
          say($("tts-status"), `Playing — first audio after ${firstAt.toFixed(0)} ms…`);
        }
        chunks.push(event.data);
        player.enqueue(event.data, rate);
        return;
      }
      const message = JSON.parse(event.data);
      if (message.type === "audio_start") {
        rate = message.sample_rate;
        start = message;
      } else if (message.type === "audio_end") {
        const audio = $("tts-audio");
        audio.src = URL.createObjectURL(wavBlob(chunks, rate));
        say($("tts-status"), `Done: ${message.duration.toFixed(2)} s of audio in ${message.chunks} chunks.`);
        badges($("tts-badges"), [
          ["latency", `${message.latency_ms.toFixed(0)} ms`],
          ["first audio", `${(firstAt ?? message.first_chunk_ms).toFixed(0)} ms`],
          ["cache", message.cached ? "hit" : "miss"],
          ["provider", start.provider],
          ["voice", start.voice],
          ["fallback", start.fallback ? "yes" : "no", start.fallback],
          ...sentimentBadges(message.sentiment),
        ]);
        resolve();
      } else if (message.type === "error") {
        reject(new Error(explain(message)));
      }
    })
      .then((socket) => socket.send(JSON.stringify({ type: "text", text, voice, stream: true, binary: true })))
      .catch(reject);
  });
}

$("tts-go").addEventListener("click", speak);

// ---- Listen: microphone ----------------------------------------------------------------

const mic = { on: false, stream: null, context: null, socket: null };

function showFinal(message) {
  const item = document.createElement("li");
  const words = document.createElement("span");
  words.textContent = message.text || "(no words)";
  const details = document.createElement("ul");
  details.className = "badges";
  badges(details, [
    ["language", message.language],
    ["after speech", `${message.end_of_speech_ms.toFixed(0)} ms`],
    ...sentimentBadges(message.sentiment),
  ]);
  item.append(words, details);
  $("finals").append(item);
  state.finals.push(message.text);
}

function onListenMessage(event) {
  if (typeof event.data !== "string") return;
  const message = JSON.parse(event.data);
  if (message.type === "partial") {
    $("partial").textContent = message.text;
    state.partials += 1;
  }
  else if (message.type === "final") {
    $("partial").textContent = "";
    showFinal(message);
  } else if (message.type === "error" && mic.on) say($("mic-status"), explain(message), true);
}

async function startListening() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say($("mic-status"), "This browser cannot use a microphone here (it needs https or localhost). Upload a file instead.", true);
    return;
  }
  try {
    mic.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (error) {
    say($("mic-status"), "The microphone was refused or is missing, so live listening is off. You can still upload a recording below.", true);
    return;
  }
  try {
    mic.context = new AudioContext();
    await mic.context.audioWorklet.addModule("/static/mic-worklet.js");
    mic.socket = await socketFor("listen", onListenMessage);
    mic.socket.send(JSON.stringify({ type: "stt_start", sample_rate: mic.context.sampleRate }));
    const source = mic.context.createMediaStreamSource(mic.stream);
    const capture = new AudioWorkletNode(mic.context, "pcm-capture");
    const mute = mic.context.createGain();
    mute.gain.value = 0;
    capture.port.onmessage = (event) => {
      if (mic.socket && mic.socket.readyState === WebSocket.OPEN) mic.socket.send(event.data);
    };
    source.connect(capture).connect(mute).connect(mic.context.destination);
  } catch (error) {
    say($("mic-status"), error.message, true);
    stopListening();
    return;
  }
  mic.on = true;
  $("mic").setAttribute("aria-pressed", "true");
  $("mic").textContent = "■ Stop listening";
  say($("mic-status"), "Listening…");
}

function stopListening() {
  const socket = mic.socket;
  mic.socket = null; // no more audio frames after stt_stop
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stt_stop" }));
  if (mic.stream) mic.stream.getTracks().forEach((track) => track.stop());
  if (mic.context) mic.context.close();
  Object.assign(mic, { on: false, stream: null, context: null, socket: null });
  $("mic").setAttribute("aria-pressed", "false");
  $("mic").textContent = "● Start listening";
  say($("mic-status"), "Stopped.");
}

// Press and hold to talk (released after half a second: stop), or click once to start and
// again to stop. Keyboard (Enter, Space) toggles.
let pressedAt = 0;
$("mic").addEventListener("pointerdown", async () => {
  if (mic.on) {
    pressedAt = 0;
    stopListening();
    return;
  }
  pressedAt = performance.now();
  await startListening();
});
$("mic").addEventListener("pointerup", () => {
  if (mic.on && pressedAt && performance.now() - pressedAt > 500) stopListening();
});
$("mic").addEventListener("click", (event) => {
  if (event.detail !== 0) return; // a pointer click was handled by pointerdown and pointerup
  if (mic.on) stopListening();
  else startListening();
});

// ---- Listen: file ----------------------------------------------------------------------

$("stt-go").addEventListener("click", async () => {
  const file = $("stt-file").files[0];
  if (!file) return say($("stt-status"), "Choose an audio file first.", true);
  say($("stt-status"), "Transcribing…");
  $("stt-go").disabled = true;
  const form = new FormData();
  form.append("file", file);
  try {
    const body = await api("/api/stt", { method: "POST", body: form });
    say($("stt-status"), body.text ? `“${body.text}”` : "No speech found.");
    badges($("stt-badges"), [
      ["language", `${body.language} (${(100 * body.language_probability).toFixed(0)}%)`],
      ["duration", `${body.duration.toFixed(2)} s`],
      ["latency", `${body.latency_ms.toFixed(0)} ms`],
      ...sentimentBadges(body.sentiment),
    ]);
    const rows = body.segments.map((segment) => {
      const row = document.createElement("tr");
      for (const value of [segment.start.toFixed(2), segment.end.toFixed(2), segment.text]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    });
    $("stt-segments").tBodies[0].replaceChildren(...rows);
    $("stt-segments").hidden = rows.length === 0;
  } catch (error) {
    say($("stt-status"), error.message, true);
  } finally {
    $("stt-go").disabled = false;
  }
});

// ---- Talk: a conversation over the Realtime API ------------------------------------------

// OpenAI's Realtime API on this service (GA event names): 24 kHz mono 16-bit PCM both ways;
// the server's voice activity detection ends each turn and starts the answer by itself.
const TALK_RATE = 24000;
const TALK_TAIL_MS = 600; // silence sent after the button is let go: the server hears the turn end
const TALK_CHECK_MS = 1500; // after that, how long the server has to say it heard the turn end
// The page's demo tool: the chat model may ask the browser for the user's local time. A tool
// runs here, in the client, as Realtime tools do; its result goes back to the model.
const TALK_TOOLS = {
  get_local_time: {
    description: "The user's local date, time and time zone, as their browser tells them.",
    parameters: { type: "object", properties: {} },
    run: () => ({
      local_time: new Date().toLocaleString(),
      time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    }),
  },
};
const TALK_SESSION = {
  type: "realtime",
  tools: Object.entries(TALK_TOOLS).map(([name, tool]) => ({
    type: "function", name, description: tool.description, parameters: tool.parameters,
  })),
  audio: {
    // The turn model ends a finished sentence sooner than silence would, and the answer begins
    // at the likely end of the turn (dropped, and marked here, when you go on speaking).
    input: {
      format: { type: "audio/pcm", rate: TALK_RATE },
      turn_detection: { type: "semantic_vad", eagerness: "auto" },
    },
    output: { format: { type: "audio/pcm", rate: TALK_RATE } },
  },
};

const talk = {
  socket: null, // open, with its session configured
  connecting: null, // the promise of a socket while one opens
  held: false,
  hold: 0, // presses so far
  setup: null, // the promise of the current press's microphone and socket
  capture: null, // { stream, context } while the microphone is on
  pending: [], // audio captured before the socket was ready
  heardIn: 0, // the press during which the server last heard speech start
  speaking: false, // the server heard speech start, and not yet its end
  responseId: null, // the answer in progress
  dropped: null, // an answer the user talked over: its late audio is not played
  checkTimer: 0,
  errorIn: 0, // the press during which the service last reported an error
  toolsRan: new Set(), // answers whose tool calls ran here: the model answers their results
  followUp: false, // the next answer continues the current exchange (after its tools ran)
  answeredIn: 0, // the press during which the last answer ended
};

// An error stays on the status line until the next press: progress does not hide it.
function talkSay(text, isError = false) {
  if (isError) talk.errorIn = talk.hold;
  else if (talk.errorIn === talk.hold) return;
  say($("talk-status"), text, isError);
}

// Web Audio player for the answers: 24 kHz buffers scheduled back to back, stopped at once when
// the user talks over them.
const talkPlayer = {
  context: null,
  next: 0,
  sources: new Set(),
  odd: null, // a byte left over from a delta of odd length
  start() {
    this.context = this.context || new AudioContext();
    this.context.resume();
  },
  enqueue(bytes) {
    if (this.odd !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.odd;
      joined.set(bytes, 1);
      bytes = joined;
      this.odd = null;
    }
    if (bytes.length % 2) {
      this.odd = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const count = bytes.length / 2;
    if (!count || !this.context) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const buffer = this.context.createBuffer(1, count, TALK_RATE);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < count; i++) channel[i] = view.getInt16(2 * i, true) / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.onended = () => {
      this.sources.delete(source);
      if (!source.cut) state.talkPlayedSamples += count;
    };
    const now = this.context.currentTime;
    if (this.next < now) this.next = now + 0.05; // (re)starting: a little lead, then gapless
    source.start(this.next);
    this.next += buffer.duration;
    this.sources.add(source);
  },
  stop() {
    if (this.sources.size) state.talkInterruptions += 1;
    for (const source of this.sources) {
      source.cut = true;
      source.stop();
    }
    this.sources.clear();
    this.next = 0;
    this.odd = null;
  },
};

function base64Of(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((sample, i) => view.setInt16(2 * i, sample, true));
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// 16-bit chunks at `from` Hz -> at `to` Hz, by linear interpolation across chunk boundaries.
// Only for browsers that cannot capture at 24 kHz themselves.
function resampler(from, to) {
  if (from === to) return (samples) => samples;
  const step = from / to;
  let position = 0; // of the next output sample, in input samples; -1 is the previous chunk's last
  let last = 0;
  return (input) => {
    const output = [];
    for (; position < input.length - 1; position += step) {
      const i = Math.floor(position);
      const a = i < 0 ? last : input[i];
      output.push(Math.round(a + (input[i + 1] - a) * (position - i)));
    }
    position -= input.length;
    if (input.length) last = input[input.length - 1];
    return Int16Array.from(output);
  };
}

// ---- Talk: the socket ----

async function talkSocket() {
  if (talk.socket && talk.socket.readyState === WebSocket.OPEN) return talk.socket;
  talk.connecting = talk.connecting || openTalk().finally(() => { talk.connecting = null; });
  return talk.connecting;
}

async function openTalk() {
  // A one-time client secret (ek_…) rides as a subprotocol, as OpenAI's browser clients send it.
  const secret = await api("/v1/realtime/client_secrets", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/realtime?model=gpt-realtime&voicepipe_events=speculation`;
  const socket = new WebSocket(url, [
    "realtime",
    `openai-insecure-api-key.${secret.value}`,
  ]);
  sockets.talk = socket; // closed with the others when the API key changes
  let refusal = null;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error("The service did not start a Realtime session in time."));
      socket.close();
    }, 15000);
    const fail = (error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.onerror = () => fail(new Error("Could not connect to the service's Realtime API."));
    socket.onclose = (event) => {
      talkClosed(socket, event);
      fail(new Error(refusal || `The service closed the Realtime connection (${event.code}).`));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "session.created") {
        clearTimeout(timer);
        socket.onmessage = onTalkMessage;
        resolve();
      } else if (message.type === "error") {
        refusal = message.error.message;
      }
    };
  });
  socket.send(JSON.stringify({ type: "session.update", session: TALK_SESSION }));
  talk.socket = socket;
  return socket;
}

function talkClosed(socket, event) {
  if (sockets.talk === socket) delete sockets.talk;
  if (event.code === 1008) askForKey();
  if (talk.socket !== socket) return;
  talk.socket = null;
  talk.responseId = null;
  talk.speaking = false;
  const reason = event.reason ? `: ${event.reason}` : "";
  talkSay(`The conversation was closed${reason}. Hold the button to start a new one.`);
}

function sendAppend(socket, samples) {
  socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: base64Of(samples) }));
  state.talkSentSamples += samples.length;
}

function sendTalkAudio(samples) {
  if (samples.length) talk.pending.push(samples);
  const socket = talk.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  for (const chunk of talk.pending.splice(0)) sendAppend(socket, chunk);
}

// ---- Talk: the conversation ----

function currentTurn() {
  return state.talkTurns[state.talkTurns.length - 1];
}

function newTurn(item) {
  const turn = { item, user: "", userDone: false, assistant: "", response: null, status: null, tools: [], dropped: [] };
  state.talkTurns.push(turn);
  return turn;
}

// The exchange a user item belongs to: a new item starts one.
function userTurn(itemId) {
  const turn = currentTurn();
  return turn && turn.item === itemId ? turn : newTurn(itemId);
}

function renderTalk() {
  const turns = state.talkTurns;
  const turn = currentTurn() || { user: "", assistant: "" };
  $("talk-user").textContent = turn.user;
  $("talk-assistant").textContent = turn.assistant;
  const earlier = turns.slice(0, -1).reverse().map((t) => {
    const item = document.createElement("li");
    item.textContent = `You: ${t.user || "…"} — Assistant: ${t.assistant || "…"}`;
    return item;
  });
  $("talk-history").replaceChildren(...earlier);
  $("talk-history").hidden = earlier.length === 0;
  const tools = (turn.tools || []).map((call) => {
    const item = document.createElement("li");
    item.textContent = `${call.name}(${call.arguments}) → ${call.output}`;
    return item;
  });
  for (const said of turn.dropped || []) {
    const item = document.createElement("li");
    item.className = "dropped";
    item.textContent = `An answer begun early to “${said}” was dropped: you went on speaking.`;
    tools.push(item);
  }
  $("talk-tools").replaceChildren(...tools);
  $("talk-tools").hidden = tools.length === 0;
}

// A tool call the model made: run it here and give the model its result.
function runTalkTool(message) {
  const turn = state.talkTurns.findLast((t) => t.response === message.response_id) || currentTurn();
  const tool = TALK_TOOLS[message.name];
  let result;
  try {
    result = tool ? tool.run(JSON.parse(message.arguments || "{}")) : { error: `no tool named ${message.name}` };
  } catch (error) {
    result = { error: String(error) };
  }
  const output = JSON.stringify(result);
  if (turn) turn.tools.push({ name: message.name, arguments: message.arguments, output });
  talk.toolsRan.add(message.response_id);
  talk.socket.send(JSON.stringify({
    type: "conversation.item.create",
    item: { type: "function_call_output", call_id: message.call_id, output },
  }));
  renderTalk();
}

function onTalkMessage(event) {
  const message = JSON.parse(event.data);
  switch (message.type) {
    case "input_audio_buffer.speech_started": {
      if (talk.responseId) state.talkBargeIns.push(talkPlayer.sources.size); // audio queued then
      talkPlayer.stop(); // barge-in: the user talks over the answer
      if (talk.responseId) talk.dropped = talk.responseId;
      talk.heardIn = talk.hold;
      talk.speaking = true;
      userTurn(message.item_id);
      renderTalk();
      if (talk.held) talkSay("Listening — let go of the button when you are done.");
      break;
    }
    case "input_audio_buffer.speech_stopped":
    case "input_audio_buffer.committed":
      talk.speaking = false;
      break;
    case "conversation.item.input_audio_transcription.delta": {
      userTurn(message.item_id).user += message.delta;
      renderTalk();
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const turn = userTurn(message.item_id);
      turn.user = message.transcript;
      turn.userDone = true;
      renderTalk();
      if (!talk.held && !talk.responseId) talkSay(message.transcript.trim() ? "Thinking…" : "No words were heard.");
      break;
    }
    case "response.created": {
      talk.responseId = message.response.id;
      let turn = currentTurn();
      if (talk.followUp) talk.followUp = false; // the answer to the tools' results
      else if (!turn || turn.response) turn = newTurn(null); // an answer on its own
      turn.assistant = "";
      turn.response = message.response.id;
      renderTalk();
      if (!talk.held) talkSay("Answering…");
      break;
    }
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta": {
      const turn = state.talkTurns.findLast((t) => t.response === message.response_id);
      if (turn) turn.assistant += message.delta; // an answer talked over may still finish its words
      renderTalk();
      break;
    }
    case "response.output_audio.delta":
      if (message.response_id !== talk.dropped) talkPlayer.enqueue(bytesOf(message.delta));
      break;
    case "response.function_call_arguments.done":
      runTalkTool(message);
      break;
    case "voicepipe.speculation.dropped": {
      const turn = currentTurn();
      if (turn) turn.dropped.push(message.transcript);
      renderTalk();
      break;
    }
    case "response.done": {
      const response = message.response;
      if (talk.responseId === response.id) talk.responseId = null;
      if (talk.toolsRan.delete(response.id) && response.status === "completed") {
        talk.followUp = true; // the model answers the results it asked for
        talk.socket.send(JSON.stringify({ type: "response.create" }));
        break;
      }
      const turn = state.talkTurns.findLast((t) => t.response === response.id);
      if (turn) turn.status = response.status;
      state.talkResponses += 1;
      if (response.status !== "cancelled") talk.answeredIn = talk.hold; // (barge-in: not yet)
      const details = response.status_details || {};
      if (response.status === "failed") {
        talkSay((details.error && details.error.message) || "The answer failed.", true);
      } else if (!talk.held) {
        talkSay(response.status === "cancelled" ? "Interrupted. Hold the button to talk." : "Your turn: hold the button to talk.");
      }
      break;
    }
    case "error":
      talkSay(message.error.message, true);
      break;
  }
}

// ---- Talk: the hold button ----

// Without a chat model there is no one to talk with: the panel says so from the start.
function showTalkReady(conversation) {
  if (!conversation || conversation.chat_model) return;
  $("talk-hold").disabled = true;
  talkSay(conversation.needs, true);
}

function stopTalkCapture() {
  const capture = talk.capture;
  talk.capture = null;
  if (!capture) return;
  capture.stream.getTracks().forEach((track) => track.stop());
  if (capture.context) capture.context.close();
}

async function startTalkCapture(hold) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (error) {
    throw new Error("The microphone was refused or is missing, so you cannot talk here.");
  }
  stopTalkCapture();
  const capture = (talk.capture = { stream, context: null });
  let source;
  try {
    capture.context = new AudioContext({ sampleRate: TALK_RATE }); // the browser resamples
    source = capture.context.createMediaStreamSource(stream);
  } catch (error) {
    // A browser that cannot: capture at the device's rate and resample here.
    if (capture.context) capture.context.close();
    capture.context = new AudioContext();
    source = capture.context.createMediaStreamSource(stream);
  }
  const context = capture.context;
  await context.audioWorklet.addModule("/static/mic-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-capture");
  const resample = resampler(context.sampleRate, TALK_RATE);
  node.port.onmessage = (event) => {
    if (talk.held && talk.hold === hold) sendTalkAudio(resample(new Int16Array(event.data)));
  };
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
}

function showHeld(held) {
  $("talk-hold").setAttribute("aria-pressed", String(held));
  $("talk-hold").textContent = held ? "■ Let go to send" : "● Hold to talk";
}

async function pressTalk() {
  if (talk.held) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    talkSay("This browser cannot use a microphone here (it needs https or localhost).", true);
    return;
  }
  talk.held = true;
  const hold = (talk.hold += 1);
  clearTimeout(talk.checkTimer);
  talk.pending = [];
  showHeld(true);
  talkPlayer.start(); // inside the gesture, so that the browser lets it play
  talkSay(talk.socket ? "Listening — let go of the button when you are done." : "Connecting…");
  talk.setup = Promise.all([startTalkCapture(hold), talkSocket()]);
  try {
    await talk.setup;
  } catch (error) {
    if (talk.hold !== hold) return;
    talkSay(error.message, true);
    talk.held = false;
    showHeld(false);
    stopTalkCapture();
    return;
  }
  if (talk.hold !== hold) return;
  sendTalkAudio(new Int16Array(0)); // what was captured while the socket opened
  if (talk.held) talkSay("Listening — let go of the button when you are done.");
}

async function releaseTalk() {
  if (!talk.held) return;
  talk.held = false;
  const hold = talk.hold;
  showHeld(false);
  try {
    await talk.setup;
  } catch (error) {
    return; // pressTalk said why
  }
  if (talk.hold !== hold) return; // pressed again meanwhile
  stopTalkCapture();
  const socket = talk.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  sendTalkAudio(new Int16Array(0));
  const silence = new Int16Array(TALK_RATE / 10);
  for (let ms = 0; ms < TALK_TAIL_MS; ms += 100) sendAppend(socket, silence);
  if (talk.answeredIn === hold) talkSay("Your turn: hold the button to talk."); // answered already
  else if (!talk.responseId) talkSay("Sent; waiting for the answer…");
  talk.checkTimer = setTimeout(() => checkTurn(hold), TALK_CHECK_MS);
}

// After the tail of silence: the server either heard the turn end (and answers by itself), is
// still inside an utterance (then the turn is committed by hand), or heard no speech at all.
function checkTurn(hold) {
  if (talk.hold !== hold || talk.held) return;
  const socket = talk.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (talk.heardIn !== hold) {
    if (!talk.responseId) talkSay("No speech was heard. Hold the button while you speak.");
  } else if (talk.speaking) {
    socket.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
  }
}

$("talk-hold").addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  $("talk-hold").setPointerCapture(event.pointerId);
  $("talk-hold").focus();
  pressTalk();
});
for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
  $("talk-hold").addEventListener(name, releaseTalk);
}
$("talk-hold").addEventListener("keydown", (event) => {
  if (event.key !== " " && event.key !== "Enter") return;
  event.preventDefault();
  if (!event.repeat) pressTalk();
});
$("talk-hold").addEventListener("keyup", (event) => {
  if (event.key === " " || event.key === "Enter") releaseTalk();
});
$("talk-hold").addEventListener("blur", releaseTalk);
$("talk-hold").addEventListener("contextmenu", (event) => event.preventDefault());

// ---- Live stats ------------------------------------------------------------------------

const history = [];

function latency(summary) {
  return summary && summary.count ? `${summary.p50.toFixed(0)} / ${summary.p95.toFixed(0)} ms` : "–";
}

function drawChart() {
  const canvas = $("latency-chart");
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  const values = history.flatMap((h) => [h.tts50, h.tts95, h.stt50]).filter((v) => v != null);
  const top = Math.max(100, ...values) * 1.1;
  g.strokeStyle = "#e0e0e0";
  g.fillStyle = "#4a4a4a";
  g.font = "12px system-ui, sans-serif";
  for (const fraction of [0, 0.5, 1]) {
    const y = height - 18 - fraction * (height - 30);
    g.beginPath(); g.moveTo(40, y); g.lineTo(width - 8, y); g.stroke();
    g.fillText(`${Math.round(top * fraction)}`, 4, y + 4);
  }
  const series = [["tts50", "#0b57d0"], ["tts95", "#8ab4f8"], ["stt50", "#188038"]];
  for (const [name, color] of series) {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((point, i) => {
      if (point[name] == null) return;
      const x = 40 + (i / Math.max(1, 39)) * (width - 50);
      const y = height - 18 - (point[name] / top) * (height - 30);
      i === 0 || history[i - 1][name] == null ? g.moveTo(x, y) : g.lineTo(x, y);
    });
    g.stroke();
  }
}

async function refreshStats() {
  try {
    const [stats, health] = await Promise.all([api("/stats"), api("/health")]);
    const tts = stats.requests.tts, stt = stats.requests.stt;
    const pipelines = stats.latency_ms.pipelines;
    $("stat-tts").textContent = `${tts.completed} done, ${tts.failed} failed`;
    $("stat-stt").textContent = `${stt.completed} done, ${stt.failed} failed`;
    $("stat-cache").textContent = `${(100 * stats.cache.hit_rate).toFixed(0)}% (${stats.cache.hits} of ${stats.cache.hits + stats.cache.misses})`;
    $("stat-tts-latency").textContent = latency(pipelines.tts);
    $("stat-stt-latency").textContent = latency(pipelines.stt);
    const breakers = health.components.tts.breakers || {};
    $("stat-breakers").textContent = Object.entries(breakers).map(([p, s]) => `${p}: ${s}`).join(", ") || "–";
    history.push({ tts50: pipelines.tts?.p50, tts95: pipelines.tts?.p95, stt50: pipelines.stt?.p50 });
    if (history.length > 40) history.shift();
    drawChart();
    state.statsUpdates += 1;
    $("stats-updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    say($("stats-status"), "");
  } catch (error) {
    say($("stats-status"), error.message, true);
  }
}

loadVoices();
refreshStats();
setInterval(refreshStats, 3000);

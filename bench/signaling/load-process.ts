/**
 * One load-generating process of bench:signaling, driven over IPC by run.ts. As 'relays' it connects idle
 * relays that answer every offer; as 'clients' it connects clients that send path requests at a given rate
 * and time each one from the request sent to the relay's answer back. Raw `ws` and pre-built frames keep
 * the generator cheap, so the server is what gets measured.
 */
import WebSocket from 'ws';

export type LoadCommand =
  | { type: 'relays'; urls: string[]; count: number; capacity: number }
  | { type: 'clients'; urls: string[]; count: number }
  | { type: 'run'; rate: number; durationMs: number }
  | { type: 'stop' };

export type LoadReport =
  | { type: 'connected'; count: number; failed: number }
  | {
      type: 'ran';
      sent: number;
      completed: number;
      /** Latencies in ms of the completed requests, sorted. */
      latencies: number[];
      errors: Record<string, number>;
    };

const CONNECT_CONCURRENCY = 200;
const HEARTBEAT_MS = 20_000;

type Frame = { type: string; [key: string]: unknown };

function post(report: LoadReport): void {
  process.send?.(report);
}

/** Opens a socket, says hello, resolves once welcomed. */
function join(
  url: string,
  hello: string,
  onFrame: (ws: WebSocket, frame: Frame) => void,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let welcomed = false;
    ws.on('open', () => ws.send(hello));
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      if (!welcomed) {
        if (frame.type === 'welcome') {
          welcomed = true;
          resolve(ws);
        } else reject(new Error(`refused: ${JSON.stringify(frame)}`));
        return;
      }
      onFrame(ws, frame);
    });
    ws.on('error', (error) => {
      if (!welcomed) reject(error);
    });
  });
}

async function connectMany(
  urls: string[],
  count: number,
  hello: string,
  onFrame: (ws: WebSocket, frame: Frame) => void,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const url = urls[next++ % urls.length]!;
      try {
        sockets.push(await join(url, hello, onFrame));
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  post({ type: 'connected', count: sockets.length, failed });
  return sockets;
}

let sockets: WebSocket[] = [];
let heartbeat: ReturnType<typeof setInterval> | undefined;

/** Heartbeats spread over the interval, as independent peers would send them, not all at once. */
function keepAlive(): void {
  const frame = JSON.stringify({ type: 'heartbeat' });
  const slices = 100;
  let slice = 0;
  heartbeat = setInterval(() => {
    const size = Math.ceil(sockets.length / slices);
    for (const ws of sockets.slice(slice * size, (slice + 1) * size))
      if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    slice = (slice + 1) % slices;
  }, HEARTBEAT_MS / slices);
}

// --- relays: answer every offer -------------------------------------------------------------------------

function onRelayFrame(ws: WebSocket, frame: Frame): void {
  if (frame.type !== 'signal') return;
  const data = frame['data'] as { type?: string } | undefined;
  if (data?.type !== 'offer') return;
  ws.send(`{"type":"signal","linkId":"${String(frame['linkId'])}","data":{"type":"answer","sdp":"v=0"}}`);
}

// --- clients: paced path requests -----------------------------------------------------------------------

type Request = { sent: number };
const inFlight = new Map<string, Request>();
const byLink = new Map<string, Request>();
let latencies: number[] = [];
let completed = 0;
let errors: Record<string, number> = {};
let requestCounter = 0;
const OFFER = '{"type":"offer","sdp":"v=0 benchmark offer"}';

function onClientFrame(ws: WebSocket, frame: Frame): void {
  switch (frame.type) {
    case 'path': {
      const request = inFlight.get(String(frame['requestId']));
      if (!request) return;
      inFlight.delete(String(frame['requestId']));
      const linkId = String(frame['linkId']);
      byLink.set(linkId, request);
      ws.send(`{"type":"signal","linkId":"${linkId}","data":${OFFER}}`);
      return;
    }
    case 'signal': {
      const linkId = String(frame['linkId']);
      const request = byLink.get(linkId);
      if (!request) return;
      byLink.delete(linkId);
      latencies.push(performance.now() - request.sent);
      completed++;
      ws.send(`{"type":"link-closed","linkId":"${linkId}"}`);
      return;
    }
    case 'error': {
      const code = String(frame['code']);
      errors[code] = (errors[code] ?? 0) + 1;
      if (frame['requestId'] !== undefined) inFlight.delete(String(frame['requestId']));
      return;
    }
  }
}

async function run(rate: number, durationMs: number): Promise<void> {
  latencies = [];
  completed = 0;
  errors = {};
  inFlight.clear();
  byLink.clear();
  const tickMs = 5;
  const start = performance.now();
  let sent = 0;
  let client = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((durationMs * rate) / 1000));
      while (sent < due) {
        const ws = sockets[client++ % sockets.length]!;
        const requestId = `q${++requestCounter}`;
        inFlight.set(requestId, { sent: performance.now() });
        ws.send(`{"type":"path-request","requestId":"${requestId}","mode":"two-hop"}`);
        sent++;
      }
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  // Let the last requests finish (or count as lost).
  const deadline = performance.now() + 2_000;
  while ((inFlight.size > 0 || byLink.size > 0) && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  post({ type: 'ran', sent, completed, latencies: latencies.sort((a, b) => a - b), errors });
}

process.on('message', (command: LoadCommand) => {
  switch (command.type) {
    case 'relays': {
      const hello = JSON.stringify({ type: 'hello', v: 1, role: 'relay', capacity: command.capacity });
      void connectMany(command.urls, command.count, hello, onRelayFrame).then((s) => {
        sockets = s;
        keepAlive();
      });
      return;
    }
    case 'clients': {
      const hello = JSON.stringify({ type: 'hello', v: 1, role: 'client' });
      void connectMany(command.urls, command.count, hello, onClientFrame).then((s) => {
        sockets = s;
        keepAlive();
      });
      return;
    }
    case 'run':
      void run(command.rate, command.durationMs);
      return;
    case 'stop':
      clearInterval(heartbeat);
      for (const ws of sockets) ws.terminate();
      process.exit(0);
  }
});

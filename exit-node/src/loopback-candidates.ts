/**
 * @roamhq/wrtc gathers ICE candidates on the loopback interface too (127.0.0.1, ::1), and its libwebrtc pings
 * candidate pairs on loopback first (a loopback network costs 0, any other interface of unknown type 50). Two
 * Node peers on different hosts then spend their first checks on pairs that cannot work: bench:wan's packet
 * captures showed the first two checks going to loopback pairs, 48 ms apart, and each new link's ICE starting
 * ~100 ms late whatever the round trip (setup at RTT 20 ms: 290 ms, of which ICE + DTLS 197). A browser far end
 * is sent loopback addresses it can only try on its own machine.
 *
 * So a Node peer keeps its loopback candidates back and signals them only if gathering ends with nothing else
 * (a host whose only interface is loopback: peers on one machine, tests in a loopback-only namespace).
 */

/** What simple-peer signals for one trickled candidate. */
type CandidateSignal = { type: 'candidate'; candidate: { candidate: string } };

/** The part of a simple-peer 9 instance (a Node EventEmitter) used here. */
export interface SignallingPeer {
  emit(event: string | symbol, ...args: unknown[]): boolean;
}

const isCandidateSignal = (signal: unknown): signal is CandidateSignal =>
  typeof signal === 'object' &&
  signal !== null &&
  (signal as { type?: unknown }).type === 'candidate' &&
  typeof (signal as { candidate?: { candidate?: unknown } }).candidate?.candidate === 'string';

/**
 * The connection address of an ICE candidate attribute (RFC 8839 §5.1: foundation, component, transport,
 * priority, address, port, "typ", type…), or undefined if the line is not one.
 */
export function candidateAddress(candidate: string): string | undefined {
  const fields = candidate.replace(/^(a=)?candidate:/, '').split(' ');
  return fields.length >= 8 && fields[6] === 'typ' ? fields[4] : undefined;
}

/** 127.0.0.0/8 and ::1 (in any spelling libwebrtc writes it). */
export function isLoopbackAddress(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address) || /^(0{0,4}:){2,7}0{0,3}1$/.test(address);
}

const isLoopbackCandidate = (candidate: string) => {
  const address = candidateAddress(candidate);
  return address !== undefined && isLoopbackAddress(address);
};

/**
 * From now on, `peer`'s loopback candidates are held back, and signalled only if gathering ends (simple-peer 9
 * emits `_iceComplete` then, or after its own timeout) with no other candidate signalled. Its offer or answer
 * carries none: it is signalled as created (cached-descriptions.ts), before any candidate was gathered.
 */
export function signalLoopbackCandidatesLast(peer: SignallingPeer): void {
  const held: CandidateSignal[] = [];
  let otherSignalled = false;
  let gatheringEnded = false;
  const emit = peer.emit.bind(peer);
  peer.emit = (event, ...args) => {
    const [signal] = args;
    if (event === 'signal' && isCandidateSignal(signal)) {
      if (!isLoopbackCandidate(signal.candidate.candidate)) {
        otherSignalled = true;
        held.length = 0;
      } else if (otherSignalled) {
        return true;
      } else if (!gatheringEnded) {
        held.push(signal);
        return true;
      }
    }
    if (event === '_iceComplete' && !gatheringEnded) {
      gatheringEnded = true;
      for (const signal of held.splice(0)) emit('signal', signal);
    }
    return emit(event, ...args);
  };
}

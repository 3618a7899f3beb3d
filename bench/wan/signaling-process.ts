/** The signaling server of the WAN benchmark's setup figure, in its own namespace. */
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { serve } from './serve.js';

export const SIGNALING_PORT = 8443;
let server: SignalingServer | undefined;

serve({
  start: async (host: string) => {
    server = await startSignalingServer({ port: SIGNALING_PORT, host });
    return server.url;
  },
  stop: () => server?.close(),
});

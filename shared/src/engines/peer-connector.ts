// Moved to links/peer-connector.ts (links are made there, not among the engines). This forward stays only until
// engines/protect.ts imports from '../links/peer-connector.js'; then delete it.
export { PeerConnector, type PeerConnectorOptions, type SignalingChannel } from '../links/peer-connector.js';

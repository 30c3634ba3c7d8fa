import type { NodeInfo } from "./types";

/**
 * A Join asked for a session that a live node other than this one owns: the client is sent there
 * (a Redirect frame and close 4017) or, in proxy mode, forwarded.
 */
export class SessionElsewhere extends Error {
  override readonly name = "SessionElsewhere";
  readonly sessionId: string;
  readonly owner: NodeInfo;
  constructor(sessionId: string, owner: NodeInfo) {
    super(`session ${sessionId} is owned by node ${owner.nodeId} at ${owner.url}`);
    this.sessionId = sessionId;
    this.owner = owner;
  }
}

/**
 * The live node (other than `self`) a session's clients go to when this node hands it over:
 * rendezvous hashing over the nodes, so every node picks the same one for a session and the
 * sessions of a draining node spread evenly over the others. `undefined` if there is none.
 */
export function successorOf(sessionId: string, nodes: readonly NodeInfo[], self: string): NodeInfo | undefined {
  let best: NodeInfo | undefined;
  let bestScore = -1;
  for (const node of nodes) {
    if (node.nodeId === self) continue;
    const score = fnv1a(`${node.nodeId}\u0000${sessionId}`);
    if (score > bestScore) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

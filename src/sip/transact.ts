/**
 * One client transaction run to its end as a promise, for the edge's own requests (REGISTER,
 * OPTIONS probes): a final response, a timeout, or a transport error.
 */
import type { SipRequest, SipResponse } from './message.ts';
import type { TransactionLayer } from './transaction.ts';
import type { Destination } from './transport.ts';

export type TransactionResult = { response: SipResponse } | { timeout: true } | { error: Error };

/**
 * Sends `request` and resolves with how its transaction ended. `deadlineMs` settles it as a
 * timeout sooner than Timer F (a health probe wants its verdict before the next probe is due);
 * the layer ends its transactions silently when it closes, so it never waits past Timer F either.
 */
export function transact(layer: TransactionLayer, request: SipRequest, destination: Destination, deadlineMs?: number): Promise<TransactionResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: TransactionResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      resolve(result);
    };
    const guard = setTimeout(() => settle({ timeout: true }), Math.min(deadlineMs ?? Infinity, 64 * layer.timers.t1 + 1000));
    guard.unref();
    try {
      layer.sendRequest(request, destination, {
        onResponse: (response) => {
          if (response.status >= 200) settle({ response });
        },
        onTimeout: () => settle({ timeout: true }),
        onTransportError: (_transaction, error) => settle({ error }),
      });
    } catch (error) {
      settle({ error: error instanceof Error ? error : new Error(String(error)) });
    }
  });
}

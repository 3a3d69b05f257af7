/**
 * The signed-in state: the API key lives in sessionStorage (this browser tab's session only) and
 * every request goes through the typed client. A 401 on any request — a revoked key — ends the
 * session and brings the person back to sign-in with a message.
 */
import { createDialplaneClient, DialplaneProblem, type DialplaneClient } from '../../clients/typescript/src/index.ts';

const STORAGE_KEY = 'dialplane.apiKey';

export const storedApiKey = () => sessionStorage.getItem(STORAGE_KEY);
export const storeApiKey = (apiKey: string) => sessionStorage.setItem(STORAGE_KEY, apiKey);
export const forgetApiKey = () => sessionStorage.removeItem(STORAGE_KEY);

/** A client for this key; `onRejected` runs when the server answers 401 to any of its requests. */
export function consoleClient(apiKey: string, onRejected: () => void): DialplaneClient {
  return createDialplaneClient({
    baseUrl: location.origin,
    apiKey,
    fetch: async (input) => {
      const response = await fetch(input);
      if (response.status === 401) onRejected();
      return response;
    },
  });
}

/** What a person reads for an error: the problem's detail (with the fields at fault), or why the server could not be reached. */
export function describeError(error: unknown): string {
  if (error instanceof DialplaneProblem) {
    const fields = Object.entries(error.errors ?? {}).map(([field, messages]) => `${field}: ${messages.join(', ')}`);
    return fields.length > 0 ? `${error.detail} (${fields.join('; ')})` : error.detail;
  }
  return `Could not reach dialplane: ${error instanceof Error ? error.message : String(error)}`;
}

export const isProblem = (error: unknown, status: number) => error instanceof DialplaneProblem && error.status === status;

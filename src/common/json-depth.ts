/** How deeply a stored JSON value (agent config, additionalData) may nest. */
export const MAX_JSON_DEPTH = 32;

/** Whether `value` nests objects and arrays no deeper than `limit` (a scalar has depth 0). */
export function withinDepth(value: unknown, limit: number = MAX_JSON_DEPTH): boolean {
  // Iterative, so a hostile value cannot exhaust the stack while being checked.
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth + 1 > limit) return false;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return true;
}

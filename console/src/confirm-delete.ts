import { formDialog, h } from './dom.ts';
import { describeError } from './session.ts';

/**
 * The delete confirmation: it lists what depends on what is being deleted (read beforehand from
 * affected-agents), and only then offers the forced delete that takes those along.
 */
export function confirmDelete(what: string, dependents: string[], consequence: string, remove: (force: boolean) => Promise<void>): void {
  const force = dependents.length > 0;
  const fields = force
    ? [
        h('p', {}, `Deleting ${what} ${consequence}:`),
        h(
          'ul',
          { 'aria-label': 'Affected' },
          dependents.map((line) => h('li', {}, line)),
        ),
      ]
    : [h('p', {}, `Delete ${what}? This cannot be undone.`)];
  formDialog(`Delete ${what}`, fields, () => remove(force), describeError, force ? 'Delete anyway' : 'Delete');
}

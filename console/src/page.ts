/** What every page of the console gets, and the pieces the list pages share. */
import type { DialplaneClient, Page as ListPage } from '../../clients/typescript/src/index.ts';
import { alertBox, h } from './dom.ts';

export interface PageContext {
  client: DialplaneClient;
  /** Where the page draws itself (below its heading). */
  content: HTMLElement;
  /** The page's error line (role alert). */
  alert: ReturnType<typeof alertBox>;
}

/** A page draws itself into the context and returns what stops it (timers) when another is shown. */
export type Page = (context: PageContext) => () => void;

/** A table with a caption (its accessible name), in a box that scrolls sideways on narrow screens. */
export function dataTable(caption: string, headers: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  const body = rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, empty))];
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((header) => h('th', { scope: 'col' }, header)),
        ),
      ),
      h('tbody', {}, body),
    ),
  );
}

/** "Previous / Next" with where the page is, for skip/take lists. */
export function pager(page: ListPage<unknown>, go: (skip: number) => void): HTMLElement {
  const first = page.totalCount === 0 ? 0 : page.skip + 1;
  const last = page.skip + page.items.length;
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: page.skip === 0, onclick: () => go(Math.max(0, page.skip - page.take)) }, 'Previous'),
    h('span', { 'aria-live': 'polite' }, `${first}–${last} of ${page.totalCount}`),
    h('button', { type: 'button', disabled: last >= page.totalCount, onclick: () => go(page.skip + page.take) }, 'Next'),
  );
}

/** Every item of a list, for the pickers (agents, trunks): the API's largest page. */
export const LARGEST_PAGE = 1000;

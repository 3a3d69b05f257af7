/** Small DOM helpers: the console is plain TypeScript over the typed client, no framework. */

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | EventListener | null | undefined>;

/** An element with attributes (`on…` ones become listeners; false/null ones are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else if (name === 'checked' && element instanceof HTMLInputElement) element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

let nextId = 0;
/** A unique element id, for labels and aria references. */
export const uniqueId = (prefix: string) => `${prefix}-${++nextId}`;

/** A labelled form control: the label's text is the control's accessible name. */
export function labelled(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= uniqueId('field');
  const hintElement = hint ? h('small', { id: `${control.id}-hint` }, hint) : null;
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id);
  if (control instanceof HTMLInputElement && control.type === 'checkbox') {
    return h('div', { class: 'field checkbox' }, control, h('label', { for: control.id }, label), hintElement);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement);
}

export function options(choices: [value: string, label: string][], selected?: string | null): HTMLOptionElement[] {
  return choices.map(([value, label]) => h('option', { value, selected: value === (selected ?? '') }, label));
}

/** An element that announces errors (role alert); empty and hidden until it has one. */
export function alertBox(): HTMLElement & { show(message: string | null): void } {
  const box = h('div', { role: 'alert', class: 'alert', hidden: true });
  return Object.assign(box, {
    show(message: string | null) {
      box.textContent = message ?? '';
      box.hidden = message === null;
    },
  });
}

export interface FormDialog {
  dialog: HTMLDialogElement;
  alert: ReturnType<typeof alertBox>;
  close(): void;
}

/**
 * A modal dialog with a form: `submit` runs on Save and closes the dialog when it resolves; what it
 * throws is shown in the dialog's alert (the dialog stays open, nothing else changes).
 */
export function formDialog(
  title: string,
  fields: HTMLElement[],
  submit: () => Promise<void>,
  describeError: (error: unknown) => string,
  saveLabel = 'Save',
): FormDialog {
  const headingId = uniqueId('dialog-title');
  const alert = alertBox();
  const save = h('button', { type: 'submit', class: 'primary' }, saveLabel);
  const form = h(
    'form',
    { method: 'dialog', novalidate: true },
    h('h2', { id: headingId }, title),
    ...fields,
    alert,
    h('div', { class: 'actions' }, save, h('button', { type: 'button', onclick: () => close() }, 'Cancel')),
  );
  const dialog = h('dialog', { 'aria-labelledby': headingId }, form);
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    save.disabled = true;
    alert.show(null);
    submit()
      .then(close)
      .catch((error: unknown) => alert.show(describeError(error)))
      .finally(() => (save.disabled = false));
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, alert, close };
}

/** Text from an input, or null when it is blank. */
export const textOrNull = (input: HTMLInputElement | HTMLTextAreaElement) => (input.value.trim() === '' ? null : input.value.trim());

export const formatTime = (iso: string) => new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });

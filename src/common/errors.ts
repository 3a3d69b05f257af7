/**
 * Failures the rules report. The HTTP layer turns each into a problem-details response; the
 * CLI into a message and an exit code.
 */
export class DomainError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly title: string,
    message: string,
    readonly errors?: Record<string, string[]>,
  ) {
    super(message);
  }
}

export const notFound = (detail: string) => new DomainError(404, 'Not Found', detail);
export const conflict = (detail: string) => new DomainError(409, 'Conflict', detail);
export const invalid = (field: string, message: string) =>
  new DomainError(400, 'Bad Request', `${field}: ${message}`, { [field]: [message] });

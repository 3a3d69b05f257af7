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
export const invalid = (field: string, message: string) => new DomainError(400, 'Bad Request', `${field}: ${message}`, { [field]: [message] });

/**
 * Something the operator must fix before dialplane can run, reported as one line naming the
 * setting or the file, and an exit code: 2 for a wrong setting or command line, 1 for the state
 * of the world (a port or a database file held by another process).
 */
export class OperatorError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** A setting that can never work: exit code 2. */
export class ConfigError extends OperatorError {
  constructor(message: string) {
    super(message, 2);
  }
}

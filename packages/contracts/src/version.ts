/**
 * Version of the API <-> worker contract. Bumped only for a breaking change; payload schemas only
 * ever gain optional fields, so a worker of version N reads jobs written by an API of version N.
 */
export const CONTRACT_VERSION = 1 as const;

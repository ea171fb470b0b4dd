/** The state file formats Vigil reads and writes, apart from the parsers so the CLI can name them cheaply. */
export const STATE_FORMATS = ['filepv', 'tmkms', 'horcrux'] as const;
export type StateFormat = (typeof STATE_FORMATS)[number];

/**
 * @azure/core-rest-pipeline, loaded on first use. With the HTTP runtime under it, it is about a hundred modules,
 * which at start would delay the socket (under a 50m CPU quota by seconds), while nothing but a mount or a token
 * request needs it. Types come from a type-only import, which loads nothing.
 */
import type * as RestPipeline from '@azure/core-rest-pipeline';

let loaded: typeof RestPipeline | undefined;

export function restPipeline(): typeof RestPipeline {
  loaded ??= require('@azure/core-rest-pipeline') as typeof RestPipeline;
  return loaded;
}

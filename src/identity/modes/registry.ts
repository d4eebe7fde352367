/**
 * Every identity mode, by name. The type makes the list complete: a mode added to IdentitySpec without its line here
 * does not compile.
 */
import type { IdentityModeDefinition, IdentityOf, ModeName } from './mode';
import { podIdentity } from './pod-identity';
import { servicePrincipal } from './service-principal';
import { tokenProxy } from './token-proxy';
import { vmManagedIdentity } from './vm-managed-identity';
import { workloadIdentity } from './workload-identity';

const MODES: { [M in ModeName]: IdentityModeDefinition<M> } = {
  vmManagedIdentity,
  servicePrincipal,
  workloadIdentity,
  podIdentity,
  tokenProxy,
};

export function modeNamed<M extends ModeName>(mode: M): IdentityModeDefinition<M> {
  return MODES[mode];
}

/** The definition of an identity's mode, typed so that its functions take that identity. */
export function modeOf<M extends ModeName>(identity: IdentityOf<M>): IdentityModeDefinition<M> {
  return MODES[identity.mode as M];
}

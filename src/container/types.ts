/**
 * The persisted record of a container, and its state machine.
 */
import type { Json } from '../engine/services.js';

/** Docker's container statuses. */
export type Status = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface HealthLog {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface ContainerState {
  Status: Status;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: 'starting' | 'healthy' | 'unhealthy' | 'none'; FailingStreak: number; Log: HealthLog[] };
}

/** A volume or bind the container uses, as shown in inspect `Mounts`. */
export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Anonymous volumes are removed with `rm -v`. */
  Anonymous?: boolean;
  /** tmpfs options. */
  Options?: string[];
}

/** Everything berthd keeps about a container (containers/<id>/container.json). */
export interface ContainerRecord {
  Id: string;
  /** With the leading slash, as Docker shows it. */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: Json;
  HostConfig: Json;
  /** Image id "sha256:…". */
  Image: string;
  State: ContainerState;
  RestartCount: number;
  Runtime: string;
  ConmonPid: number;
  MountPoints: MountPoint[];
  /** Set when stopped by the user (stop/kill), for the unless-stopped and on-failure policies. */
  ManuallyStopped: boolean;
  ExecIDs: string[];
  Platform: string;
  /** Set when the daemon remaps user namespaces and the container did not opt out (--userns=host). */
  IdMap?: { uid: { hostID: number; size: number }; gid: { hostID: number; size: number } };
  /** The writable layer is disposable (builder RUN containers): mounted volatile. */
  Scratch?: boolean;
}

/** Guard helpers (youki style). */
export const canStart = (s: Status): boolean => s === 'created' || s === 'exited' || s === 'dead' || s === 'restarting';
export const isActive = (s: Status): boolean => s === 'running' || s === 'paused' || s === 'restarting';

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A fresh state for a created container. */
export function createdState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

/** Set the status and the booleans that mirror it. */
export function setStatus(st: ContainerState, s: Status): void {
  st.Status = s;
  st.Running = s === 'running' || s === 'paused' || s === 'restarting';
  st.Paused = s === 'paused';
  st.Restarting = s === 'restarting';
  st.Dead = s === 'dead';
}

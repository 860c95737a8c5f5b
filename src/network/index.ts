/** Networks: bridges, IPAM, namespaces, netavark/aardvark-dns. */
export { NetworkManager, type NetworkManagerOptions, type AttachContainer, type AttachResult, type ContainerRef, type NetworkRecord } from './network-manager.js';
export * as ipam from './ipam.js';

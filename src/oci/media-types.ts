/** OCI and Docker media types used by berth. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** True for any layer media type (OCI or Docker). */
export function isLayerMediaType(mt: string): boolean {
  return mt.startsWith('application/vnd.oci.image.layer.') || mt.startsWith('application/vnd.docker.image.rootfs.');
}

/** True for a layer media type that says the blob is an uncompressed tar (OCI or Docker). */
export function isPlainLayerMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociLayer || mt === MediaType.dockerLayer;
}

/** The OCI layer media type for a layer blob, from its first bytes (gzip or zstd magic, else plain tar). */
export function layerMediaTypeFromMagic(head: Uint8Array): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.ociLayerGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

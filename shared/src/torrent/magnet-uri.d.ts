// magnet-uri 7 ships no type definitions; these are the parts Underpass reads (its README documents them).
declare module 'magnet-uri' {
  export interface MagnetObject {
    infoHash?: string;
    name?: string;
    announce?: string[];
    urlList?: string[];
    peerAddresses?: string[];
    xs?: string | string[];
    [key: string]: unknown;
  }
  export function encode(magnet: MagnetObject): string;
  export default function decode(uri: string): MagnetObject;
}

"""PyNaCl's side of the interop tests (tests/pynacl.rs drives it).

Usage:
  interop.py open-dm   RECIPIENT_SK SENDER_PK NONCE CIPHERTEXT   -> prints the plaintext
  interop.py seal-dm   SENDER_SK RECIPIENT_PK PLAINTEXT          -> prints "NONCE CIPHERTEXT"
  interop.py open-backup FILE PASSPHRASE                         -> prints the contents JSON
All binary values are hex.
"""
import json
import sys

import nacl.bindings
import nacl.public
import nacl.pwhash


def main(argv):
    cmd = argv[1]
    if cmd == "open-dm":
        sk, pk, nonce, ct = (bytes.fromhex(a) for a in argv[2:6])
        box = nacl.public.Box(nacl.public.PrivateKey(sk), nacl.public.PublicKey(pk))
        sys.stdout.write(box.decrypt(ct, nonce).decode())
    elif cmd == "seal-dm":
        sk, pk = bytes.fromhex(argv[2]), bytes.fromhex(argv[3])
        box = nacl.public.Box(nacl.public.PrivateKey(sk), nacl.public.PublicKey(pk))
        msg = box.encrypt(argv[4].encode())
        sys.stdout.write(f"{msg.nonce.hex()} {msg.ciphertext.hex()}")
    elif cmd == "open-backup":
        data = open(argv[2], "rb").read()
        assert data[:8] == b"NXMBAK01", "not a Nexus mesh backup"
        opslimit = int.from_bytes(data[8:12], "little")
        memlimit = int.from_bytes(data[12:16], "little")
        salt, nonce, header, ct = data[16:32], data[32:56], data[:56], data[56:]
        key = nacl.pwhash.argon2id.kdf(32, argv[3].encode(), salt, opslimit=opslimit, memlimit=memlimit)
        plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, header, nonce, key)
        sys.stdout.write(json.dumps(json.loads(plain)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)

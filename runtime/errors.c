/* Names of the public error codes. */
#include "moeflash.h"

const char *mf_strerror(int err)
{
    switch (err) {
    case MF_OK: return "success";
    case MF_E_ARG: return "invalid argument (NULL or out of range)";
    case MF_E_IO: return "the port failed to read the image";
    case MF_E_FORMAT: return "not a moeflash image, or an inconsistent one";
    case MF_E_VERSION: return "image format newer than this runtime";
    case MF_E_CRC: return "checksum mismatch (corrupt image)";
    case MF_E_RANGE: return "offset or size past the end of the image";
    case MF_E_ARENA: return "arena too small";
    case MF_E_CONTEXT: return "context length exhausted";
    case MF_E_STATE: return "call out of order (e.g. sample before feed)";
    case MF_E_UNSUPPORTED: return "encoding, architecture or feature not supported";
    case MF_E_FLASH: return "flash read failed after retries";
    case MF_E_TOKEN: return "token id outside the vocabulary";
    default: return "unknown error";
    }
}

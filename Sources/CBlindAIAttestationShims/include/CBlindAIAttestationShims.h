#ifndef CBLINDAI_ATTESTATION_SHIMS_H
#define CBLINDAI_ATTESTATION_SHIMS_H

#include <stdint.h>

#define BLINDAI_SNP_USER_DATA_SIZE 64
#define BLINDAI_SNP_RESPONSE_SIZE 4000

/// SNP_GET_REPORT on an open `/dev/sev-guest` descriptor.
/// `response` receives the 4000-byte MSG_REPORT_RSP (status u32, report_size u32, 24 reserved bytes, report).
/// Returns 0, or -errno; `exitinfo2` receives the firmware/VMM error word.
int blindai_snp_get_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint64_t *exitinfo2);

/// SNP_GET_EXT_REPORT: as above, plus the host-provided certificate table in `certs` (page-aligned buffer).
/// On input `*certs_len` is the buffer size; when it is too small the call fails with -EIO/-EINVAL and
/// `*certs_len` holds the size the host needs.
int blindai_snp_get_ext_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint8_t *certs,
                               uint32_t *certs_len, uint64_t *exitinfo2);

#endif

#include "CBlindAIAttestationShims.h"

#include <errno.h>
#include <string.h>

#if defined(__linux__)
#include <sys/ioctl.h>

/* Layouts from Linux include/uapi/linux/sev-guest.h (stable kernel ABI). */
struct blindai_snp_report_req {
    uint8_t user_data[64];
    uint32_t vmpl;
    uint8_t rsvd[28];
};

struct blindai_snp_ext_report_req {
    struct blindai_snp_report_req data;
    uint64_t certs_address;
    uint32_t certs_len;
};

struct blindai_snp_guest_request_ioctl {
    uint8_t msg_version;
    uint64_t req_data;
    uint64_t resp_data;
    uint64_t exitinfo2;
};

#define BLINDAI_SNP_GET_REPORT _IOWR('S', 0x0, struct blindai_snp_guest_request_ioctl)
#define BLINDAI_SNP_GET_EXT_REPORT _IOWR('S', 0x2, struct blindai_snp_guest_request_ioctl)

int blindai_snp_get_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint64_t *exitinfo2) {
    struct blindai_snp_report_req req;
    struct blindai_snp_guest_request_ioctl io;
    memset(&req, 0, sizeof(req));
    memset(&io, 0, sizeof(io));
    memcpy(req.user_data, user_data, BLINDAI_SNP_USER_DATA_SIZE);
    req.vmpl = vmpl;
    memset(response, 0, BLINDAI_SNP_RESPONSE_SIZE);
    io.msg_version = 1;
    io.req_data = (uint64_t)(uintptr_t)&req;
    io.resp_data = (uint64_t)(uintptr_t)response;
    int rc = ioctl(fd, BLINDAI_SNP_GET_REPORT, &io);
    if (exitinfo2) *exitinfo2 = io.exitinfo2;
    return rc < 0 ? -errno : 0;
}

int blindai_snp_get_ext_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint8_t *certs,
                               uint32_t *certs_len, uint64_t *exitinfo2) {
    struct blindai_snp_ext_report_req req;
    struct blindai_snp_guest_request_ioctl io;
    memset(&req, 0, sizeof(req));
    memset(&io, 0, sizeof(io));
    memcpy(req.data.user_data, user_data, BLINDAI_SNP_USER_DATA_SIZE);
    req.data.vmpl = vmpl;
    req.certs_address = (uint64_t)(uintptr_t)certs;
    req.certs_len = *certs_len;
    memset(response, 0, BLINDAI_SNP_RESPONSE_SIZE);
    io.msg_version = 1;
    io.req_data = (uint64_t)(uintptr_t)&req;
    io.resp_data = (uint64_t)(uintptr_t)response;
    int rc = ioctl(fd, BLINDAI_SNP_GET_EXT_REPORT, &io);
    if (exitinfo2) *exitinfo2 = io.exitinfo2;
    *certs_len = req.certs_len;
    return rc < 0 ? -errno : 0;
}

#else

int blindai_snp_get_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint64_t *exitinfo2) {
    (void)fd; (void)user_data; (void)vmpl; (void)response;
    if (exitinfo2) *exitinfo2 = 0;
    return -ENOSYS;
}

int blindai_snp_get_ext_report(int fd, const uint8_t *user_data, uint32_t vmpl, uint8_t *response, uint8_t *certs,
                               uint32_t *certs_len, uint64_t *exitinfo2) {
    (void)fd; (void)user_data; (void)vmpl; (void)response; (void)certs; (void)certs_len;
    if (exitinfo2) *exitinfo2 = 0;
    return -ENOSYS;
}

#endif

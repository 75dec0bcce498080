/* delivery/smpp.h -- the SMPP 3.4 transport: `cd_transport_smpp` (declared in
 * delivery/transport.h) is a transceiver client built on libsmpp34.
 *
 * URL: smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=10&enquire_link=30&system_type=X&from=S
 *   SYSTEM_ID   at most 15 characters, PASSWORD at most 8 (percent-encoding allowed);
 *   HOST        a name, an IPv4 address or [IPv6]; PORT defaults to 2775;
 *   window      submit_sm PDUs sent or queued without an answer yet, 1..1000 (10);
 *   enquire_link seconds between keep-alives, 0 = never (30);
 *   system_type sent in bind_transceiver, at most 12 characters ("");
 *   from        the sender used when cd_sms.from is "" ("" = let the SMSC choose).
 * Unknown parameters are logged and ignored.
 *
 * Behaviour: open() starts one I/O thread, which connects in the background, binds, and
 * reconnects after any error or unbind with a backoff from 0.2 s doubling to 10 s.
 * submit() encodes the text (util/gsm.h) and queues it; a long text goes out as several
 * submit_sm with a UDH (esm_class 0x40, IE 0x00), all asking for a delivery receipt.
 * sent() fires once per message when all of its parts are answered; remote_id is the parts'
 * message_ids joined with ','; a failure gets remote_id NULL and an error text. Addresses:
 * "+E.164" goes as TON 1/NPI 1 without '+', up to 8 digits as TON 3, letters (at most 11)
 * as TON 5; a destination must be a number. Throttling (0x58), a full queue (0x14), system errors
 * (0x08, 0x64, 0xFF, 0x04) and a lost connection are temporary; every other error is permanent, and
 * so is a text or address that cannot be sent at all. Inbound deliver_sm are always answered (0x65
 * ESME_RX_P_APPN for one we cannot use): receipts go to receipt(), other messages (reassembled from
 * UDH or SAR parts, or after 60 s whatever parts arrived) to inbound() with provider_id "smpp:<bind
 * time ms>:<sequence number>". From and to get a '+' when their TON is 1. */
#ifndef CD_DELIVERY_SMPP_H
#define CD_DELIVERY_SMPP_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/transport.h"

#define CD_SMPP_MAX_PDU 65536 /* a longer command_length means the stream is garbage */

/* libsmpp34 writes its error text into process-wide globals on every pack and unpack, so
 * two threads may never run them at once, and a failed unpack leaks the TLV it was
 * reading. Everything in consentd (and its tests) that packs or unpacks goes through these
 * three, which hold one process-wide lock and free what a failed unpack allocated.
 *
 * Packs the libsmpp34 struct `pdu` (e.g. submit_sm_t *) of type command_id into buf[size];
 * *len gets the PDU's length. Returns 0, or -1 when libsmpp34 refuses it. */
int cd_smpp_pack(uint32_t command_id, void *pdu, unsigned char *buf, size_t size, size_t *len);
/* Unpacks buf[len] into `pdu` (zero it first). buf needs no terminating NUL. command_id is
 * one of bind_transceiver(_resp), submit_sm(_resp), deliver_sm(_resp) or a header-only PDU
 * (generic_nack, enquire_link(_resp), unbind(_resp)); other commands are refused. On 0 the
 * PDU's TLV list (its `tlv` member, if it has one) is the caller's, released with
 * cd_smpp_tlv_free; on -1 nothing is left to free and *pdu is zeroed. */
int cd_smpp_unpack(uint32_t command_id, void *pdu, const unsigned char *buf, size_t len);
/* Frees a tlv_t list from cd_smpp_unpack. NULL is a no-op. */
void cd_smpp_tlv_free(void *tlv);

#endif

"""An SMTP server on loopback for the tests (aiosmtpd, Debian's python3-aiosmtpd): appends what a
test checks of each message to messages.jsonl in its folder, parsed by Python's own email
package (not by the code that wrote the message). A message whose subject holds REFUSE is
refused for good (554), as a server refuses a message it will never take.

Usage: smtp_sink.py PORT DIR
"""

import json
import os
import sys
import time
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        msg = BytesParser(policy=policy.default).parsebytes(envelope.content)
        if "REFUSE" in str(msg["subject"]):
            return "554 5.6.0 refused for the test"
        body = msg.get_body(preferencelist=("plain",))
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "list_unsubscribe": str(msg["list-unsubscribe"] or ""),
            "list_unsubscribe_post": str(msg["list-unsubscribe-post"] or ""),
            "content_type": msg.get_content_type(),
            "body": body.get_content() if body is not None else "",
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return "250 OK"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(os.path.join(folder, "messages.jsonl")), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"smtp sink on 127.0.0.1:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

"""The MSSanté secure-mail face: SMTP relay (mutual TLS), MIME and IHE XDM, outbound queue,
and the patient's mailbox HTTP API. Rules and storage live in ``espace.mailbox``."""

"""Forward mode through torch.distributed: functional collectives, c10d, DTensor, FSDP2."""

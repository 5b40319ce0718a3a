//go:build !linux

package sockopt

func delivery(fd uintptr) (DeliveryInfo, error) { return DeliveryInfo{}, ErrNoDeliveryInfo }
